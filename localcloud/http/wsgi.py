"""The edge's HTTP/1.1 server: a lean WSGI server on 127.0.0.1, a thread per client connection.

werkzeug's development server closes the connection after every response (each SDK call paid
a new TCP connection and a new thread) and parses headers through the email package: about
0.8 ms a request on a 2-core machine, more than the DynamoDB or Lambda work behind it. This
server keeps connections alive, reads the request head itself, hands the WSGI app the body
stream unchanged (the edge reads and bounds bodies itself, length-delimited or chunked,
`localcloud/edge/bodies.py`), and writes the whole response in one send with TCP_NODELAY.
A connection is kept alive only when the request's body was read to its end: after a chunked
body, a refused body or a `Connection: close`, the connection closes, and so does one left
idle for IDLE_S.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_LINE = 64 * 1024  # the request line and each header line
MAX_HEADERS = 200
HEAD_IDLE_S = 10.0  # once a request began, each read of its head waits at most this
IDLE_S = 120.0  # a kept-alive connection idle this long is closed (SDKs reconnect)
_NO_BODY_STATUS = (204, 304)
_LINGER_S = 2.0  # after a response to a body not read to its end, how long to drain
_LINGER_BYTES = 1024 * 1024


class WsgiServer:
    """Serve a WSGI app on (host, port) until `shutdown`; port 0 lets the OS pick."""

    def __init__(self, host: str, port: int, app: WsgiApp | None = None) -> None:
        self.app = app
        self._socket = socket.create_server((host, port), backlog=128)
        self.server_name = host
        self.server_port: int = self._socket.getsockname()[1]
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def serve_forever(self) -> None:
        """Accept connections until shutdown, each served by a daemon thread."""
        while not self._stopping.is_set():
            try:
                connection, address = self._socket.accept()
            except OSError:  # the listening socket was closed by shutdown()
                break
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(connection)
            threading.Thread(
                target=self._serve_connection, args=(connection, address), daemon=True
            ).start()

    def shutdown(self) -> None:
        """Stop accepting and close the open client connections."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _serve_connection(self, connection: socket.socket, address: Any) -> None:
        rfile = connection.makefile("rb", buffering=64 * 1024)
        try:
            while self._serve_one(connection, rfile, address):
                pass
        except (OSError, ValueError):  # the client went away, or a read timed out
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(OSError):
                rfile.close()
                connection.close()

    def _serve_one(self, connection: socket.socket, rfile: Any, address: Any) -> bool:
        """Serve one request; True if the connection stays open for the next."""
        connection.settimeout(IDLE_S)  # a kept-alive connection waits this long for its client
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            return False
        connection.settimeout(HEAD_IDLE_S)
        if line in (b"\r\n", b"\n"):  # a stray empty line between requests (RFC 9112 2.2)
            line = rfile.readline(MAX_LINE + 1)
        parts = line.decode("latin-1").split()
        if len(line) > MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            status = 414 if len(line) > MAX_LINE else 505 if len(parts) == 3 else 400
            _write(connection, _plain(status, "Bad request line."))
            return False
        method, target, version = parts
        headers = _read_headers(rfile)
        if headers is None:
            _write(connection, _plain(431, "Request header fields too large or malformed."))
            return False
        environ = self._environ(method, target, version, headers, rfile, connection, address)
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = environ["wsgi.input"]
        try:
            status, response_headers, payload = _run(self.app, environ)
        except Exception:  # an app that failed without answering: the client still gets one
            _write(connection, _plain(500, "Internal server error."))
            raise
        close = _wants_close(version, environ) or not body.complete
        _write(connection, _response(status, response_headers, payload, method, close))
        if not body.complete:
            _linger(connection)
        return not close

    def _environ(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        rfile: Any,
        connection: socket.socket,
        address: Any,
    ) -> dict[str, Any]:
        """The WSGI environ of one request (PEP 3333), the raw target in RAW_URI."""
        path, _, query = target.partition("?")
        if "://" in path:  # absolute-form target: keep the path
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": target,
            "REQUEST_URI": target,
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": str(self.server_port),
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": address[0],
            "REMOTE_PORT": address[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": connection,  # the edge bounds its body reads with timeouts
            "localcloud.headers": headers,  # names as sent (moto keeps S3's underscored ones)
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if "_" in name:  # as werkzeug: an underscored name could spoof a dashed one
                continue
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        length_text = environ.get("CONTENT_LENGTH", "").strip()
        chunked = "HTTP_TRANSFER_ENCODING" in environ
        if chunked or not length_text.isdigit():
            length = 0 if not chunked and not length_text else None
        else:
            length = int(length_text)
        environ["wsgi.input"] = _Body(rfile, length)
        return environ


class _Body:
    """The request body stream; `complete` once a length-delimited body was read to its end.

    A body of unknown extent (chunked, or a Content-Length that is not a number) is never
    complete: its connection closes after the response.
    """

    def __init__(self, rfile: Any, length: int | None) -> None:
        self._rfile = rfile
        self.remaining = length

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def read(self, size: int = -1) -> bytes:
        if self.remaining is None:
            return self._rfile.read(size) if size >= 0 else self._rfile.read()
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self._rfile.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.remaining is None:
            return self._rfile.readline(size)
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self._rfile.readline(size) if size else b""
        self.remaining -= len(data)
        return data


def _read_headers(rfile: Any) -> list[tuple[str, str]] | None:
    """The header fields up to the empty line, or None if too many, too long or malformed."""
    headers: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line or len(line) > MAX_LINE or len(headers) >= MAX_HEADERS:
            return None
        if line[:1] in (b" ", b"\t"):  # obsolete line folding (RFC 9112 5.2)
            if not headers:
                return None
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            return None
        headers.append((name, value.strip()))


def _run(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call the app; its status line, headers and whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None  # the write() callable: the course's apps return bodies

    result = app(environ, start_response)
    try:
        payload = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0], started[1], payload


def _response(
    status: str, headers: list[tuple[str, str]], payload: bytes, method: str, close: bool
) -> bytes:
    """The whole response: status line, headers with framing, body."""
    code = int(status.split()[0])
    lines = [f"HTTP/1.1 {status}"]
    has_length = has_date = False
    for name, value in headers:
        lower = name.lower()
        if lower in ("connection", "transfer-encoding"):
            continue  # framing is this server's
        has_length = has_length or lower == "content-length"
        has_date = has_date or lower == "date"
        lines.append(f"{name}: {value}")
    bodiless = code < 200 or code in _NO_BODY_STATUS
    if not has_length and not bodiless:
        lines.append(f"Content-Length: {len(payload)}")
    if not has_date:
        lines.append(f"Date: {_http_date()}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if method == "HEAD" or bodiless else head + payload


def _wants_close(version: str, environ: dict[str, Any]) -> bool:
    connection = environ.get("HTTP_CONNECTION", "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" not in connection
    return "close" in connection


def _plain(status: int, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _write(connection: socket.socket, data: bytes) -> None:
    connection.sendall(data)


def _linger(connection: socket.socket) -> None:
    """Half-close, then drop what the client still sends for a moment.

    Closing a socket with unread data resets the connection, and the client could lose the
    answer on its way (a body refused before it was read).
    """
    connection.shutdown(socket.SHUT_WR)
    connection.settimeout(_LINGER_S / 4)
    deadline, drained = time.monotonic() + _LINGER_S, 0
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline and drained < _LINGER_BYTES:
            data = connection.recv(64 * 1024)
            if not data:
                return
            drained += len(data)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]
