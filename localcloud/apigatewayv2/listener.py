"""One HTTP/1.1 server per HTTP API, on 127.0.0.1 and a port the OS picks.

A thread per client connection with keep-alive; each request is read whole, handed to the
API's handler and answered in a single write (status line, headers and body together, with
TCP_NODELAY, so keep-alive requests never wait on Nagle's algorithm).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .events import HttpRequest, HttpResponse, error

log = logging.getLogger("localcloud.apigatewayv2")

HOST = "127.0.0.1"
IDLE_KEEP_ALIVE_S = 120  # an idle client connection is closed after this
_FRAMING = {"content-length", "transfer-encoding", "connection", "date"}

Handler = Callable[[HttpRequest], HttpResponse]


class Listener:
    """An API's local HTTP server: start, stop, URL."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The listening port (0 before start)."""
        return self._server.server_address[1] if self._server else 0

    @property
    def url(self) -> str:
        """Base URL of the listener."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a background thread."""
        self._server = _Server((HOST, 0), _RequestHandler)
        self._server.handler = self.handler
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"apigw-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close the socket and every open client connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    handler: Handler

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open client connections, so that stop() can close them."""
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every client connection (kept-alive threads end at once)."""
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_KEEP_ALIVE_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence the per-request access log."""

    def _serve(self) -> None:
        """Read the request, let the API handle it, write the response."""
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(error(400, "Bad Request"), head=False)
            return
        path, _, query = self.path.partition("?")
        request = HttpRequest(
            method=self.command,
            raw_path=path,
            raw_query=query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            port=self.server.server_address[1],
        )
        try:
            response = self.server.handler(request)
        except Exception:  # a gateway bug must still answer like API Gateway does
            log.exception("HTTP API request %s %s failed", self.command, self.path)
            response = error(500, "Internal Server Error")
        self._write(response, head=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def _read_body(self) -> bytes:
        """The request body: Content-Length or chunked (ValueError if malformed)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are dropped
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _write(self, response: HttpResponse, head: bool) -> None:
        """Send the whole response in one write."""
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines += [f"{k}: {v}" for k, v in response.headers if k.lower() not in _FRAMING]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        length = next(
            (v for k, v in response.headers if k.lower() == "content-length" and head), None
        )
        lines.append(f"Content-Length: {length or len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(data if head else data + response.body)
