"""One request on a listener's client connection, and the ways to answer it.

A service reads the request's method, target, headers and body here, then answers with a
response it made itself (`respond`, written at once) or relays an upstream response as it
arrives (`relay`). A request body is read whole up to a size the service chooses, or handed
over in pieces as it arrives: length-delimited and chunked bodies alike, never more than
COPY_SIZE bytes at a time whatever a chunk declares. A malformed chunk, or a body over the
listener's limit, raises `framing.Refusal`, which the listener answers if no response began.
"""

from __future__ import annotations

import email.utils
import http.client
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from .framing import Limits, Refusal, RequestHead, chunk_end, chunk_size, read_trailers
from .hop_by_hop import HOP_BY_HOP

COPY_SIZE = 64 * 1024
_NO_BODY = (204, 304)


class Exchange:
    """One request: what the client sent, and the means to answer it."""

    def __init__(
        self,
        handler: BaseHTTPRequestHandler,
        head: RequestHead,
        local_port: int,
        limits: Limits,
    ) -> None:
        self._handler, self._limits = handler, limits
        self.method: str = head.method
        self.target: str = head.target  # as sent: the path and the query string
        self.path, _, self.query = self.target.partition("?")
        self.version: str = head.version
        self.client_ip: str = handler.client_address[0]
        self.local_port = local_port
        self.headers: list[tuple[str, str]] = head.headers
        self.named: dict[str, str] = {}  # lower-case name -> values joined by ", "
        for name, value in self.headers:
            key = name.lower()
            self.named[key] = f"{self.named[key]}, {value}" if key in self.named else value
        self.chunked = head.chunked
        self.length = head.length  # the Content-Length (None when chunked or absent)
        # Framing that servers may read differently: the upstream connection is not reused.
        self.ambiguous = head.ambiguous
        self.started = False  # True once the response's first bytes went out
        self._body_left = self.chunked or bool(self.length)

    @property
    def close_connection(self) -> bool:
        """True when the client connection closes after this response."""
        return bool(self._handler.close_connection)

    @close_connection.setter
    def close_connection(self, value: bool) -> None:
        self._handler.close_connection = value

    def header(self, name: str) -> str | None:
        """A header's values joined by ", " (the name in any case), or None."""
        return self.named.get(name.lower())

    # -- the request body ----------------------------------------------------------------

    def read_body(self, buffered: int | None = None) -> tuple[bytes | None, Iterator[bytes] | None]:
        """(whole body, None), or (None, pieces) for a chunked body or one over `buffered` bytes.

        The pieces raise `Refusal` for a malformed chunk or a body over the listener's limit,
        ConnectionError when the client goes mid-body.
        """
        if self.chunked:
            return None, self._chunks()
        length = self.length or 0
        if buffered is None or length <= buffered:
            body = b"".join(self._fixed(length)) if length else b""
            self._body_left = False
            return body, None
        return None, self._fixed(length)

    def whole_body(self) -> bytes:
        """The whole body, however it is framed (Refusal if its framing is unreadable)."""
        body, pieces = self.read_body()
        return body if pieces is None else b"".join(pieces)

    def _chunks(self) -> Iterator[bytes]:
        """The decoded chunks of a chunked body, in pieces of at most COPY_SIZE bytes."""
        rfile, limit, total = self._handler.rfile, self._limits.max_body, 0
        while size := chunk_size(rfile):
            total += size
            if limit is not None and total > limit:
                raise Refusal(413, "chunked body over the payload limit")
            yield from self._fixed(size)
            chunk_end(rfile)
        read_trailers(rfile, self._limits)  # trailers are read and dropped
        self._body_left = False

    def _fixed(self, length: int) -> Iterator[bytes]:
        """A length-delimited body in pieces."""
        rfile = self._handler.rfile
        while length > 0:
            data = rfile.read(min(COPY_SIZE, length))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            length -= len(data)
            yield data
        self._body_left = False

    # -- answers -------------------------------------------------------------------------

    def respond(
        self, status: int, headers: list[tuple[str, str]], body: bytes, length: str | None = None
    ) -> None:
        """Write a whole response in one write; Content-Length is `length` or the body's."""
        if self._body_left:  # a body not read to its end leaves the connection unusable
            self.close_connection = True
        lines = [f"HTTP/1.1 {status} {reason(status)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.started = True
        self._handler.wfile.write(head if self.method == "HEAD" else head + body)

    def relay(self, response: http.client.HTTPResponse) -> bool:
        """Pass an upstream response through unchanged (hop-by-hop headers aside) as it arrives.

        False when either side failed mid-response: the upstream connection is then unusable,
        and the client connection closes.
        """
        headers = [(k, v) for k, v in response.msg.items() if k.lower() not in HOP_BY_HOP]
        has_body = self.method != "HEAD" and response.status not in _NO_BODY
        length = response.getheader("Content-Length")
        http10 = self.version == "HTTP/1.0"
        chunk_out = has_body and length is None and not http10
        if has_body and length is None and http10:
            self.close_connection = True  # the end of the body is the end of the connection
        if chunk_out:
            headers.append(("Transfer-Encoding", "chunked"))
        if self.close_connection:
            headers.append(("Connection", "close"))
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        lines += [f"{k}: {v}" for k, v in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        wfile = self._handler.wfile
        self.started = True
        try:
            if not has_body:
                response.read()
                wfile.write(head)
            elif length is not None and length.isdigit() and int(length) <= COPY_SIZE:
                wfile.write(head + response.read())
            else:
                wfile.write(head)
                while piece := response.read1(COPY_SIZE):
                    wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece) if chunk_out else piece)
                if chunk_out:
                    wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            return False
        return True


def http_date() -> str:
    """The current time as an HTTP Date header value."""
    return email.utils.formatdate(usegmt=True)


def reason(status: int) -> str:
    """The reason phrase of a status code ("" for codes without one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
