"""One request on a listener's client connection, and the ways to answer it.

A service reads the request's method, target, headers and body here, then answers with a
response it made itself (`respond`, written at once) or relays an upstream response as it
arrives (`relay`). A request body is read whole up to a size the service chooses, or handed
over in pieces as it arrives: length-delimited and chunked bodies alike.
"""

from __future__ import annotations

import email.utils
import http.client
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from .hop_by_hop import HOP_BY_HOP

COPY_SIZE = 64 * 1024
_LINE = 65537  # the longest header or chunk-size line read, plus one
_NO_BODY = (204, 304)


class Exchange:
    """One request: what the client sent, and the means to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, local_port: int) -> None:
        self._handler = handler
        self.method: str = handler.command
        self.target: str = handler.path  # as sent: the path and the query string
        self.path, _, self.query = self.target.partition("?")
        self.version: str = handler.request_version
        self.client_ip: str = handler.client_address[0]
        self.local_port = local_port
        self.headers: list[tuple[str, str]] = handler.headers.items()
        self.named: dict[str, str] = {}  # lower-case name -> values joined by ", "
        for name, value in self.headers:
            key = name.lower()
            self.named[key] = f"{self.named[key]}, {value}" if key in self.named else value
        self.chunked = "chunked" in self.named.get("transfer-encoding", "").lower()
        self._body_left = self.chunked or self.named.get("content-length", "0") != "0"

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

        ValueError for an unreadable Content-Length.
        """
        if self.chunked:
            return None, self._chunks()
        length = int(self.named.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if buffered is None or length <= buffered:
            body = self._handler.rfile.read(length) if length else b""
            self._body_left = False
            return body, None
        return None, self._fixed(length)

    def whole_body(self) -> bytes:
        """The whole body, however it is framed (ValueError if the framing is unreadable)."""
        body, pieces = self.read_body()
        return body if pieces is None else b"".join(pieces)

    def _chunks(self) -> Iterator[bytes]:
        """The decoded chunks of a chunked body (trailers are read and dropped)."""
        rfile = self._handler.rfile
        while True:
            size_line = rfile.readline(_LINE)
            if not size_line:
                raise ConnectionError("client closed the connection mid-body")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size < 0:
                raise ValueError("negative chunk size")
            if size == 0:
                while rfile.readline(_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                self._body_left = False
                return
            data = rfile.read(size)
            rfile.readline(3)  # the CRLF after the chunk
            yield data

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
        self._handler.wfile.write(head if self.method == "HEAD" else head + body)

    def send_error(self, status: int, message: str | None = None) -> None:
        """The standard library's HTML error answer; the connection closes after it."""
        self._handler.send_error(status, message)

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
