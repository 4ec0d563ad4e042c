"""The HTTP layer of everything the local cloud serves on a port of its own.

ALB listeners and API Gateway APIs share it: `server.HttpListener` is the threaded HTTP/1.1
server on 127.0.0.1 that hands each request to its service as an `exchange.Exchange` once
`framing` has read its head within the listener's limits (or refused it with the service's
own error body); `upstream.UpstreamPool` keeps connections to targets and backends alive
across requests;
`messages.WholeMessages` serves a handler that turns a whole request into a whole response.
A service keeps only its routing and its own answers. `wsgi.WsgiServer` is the edge's own
server: a keep-alive HTTP/1.1 WSGI server that leaves body framing to the edge.
"""
