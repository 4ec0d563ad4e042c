"""Request bodies read in pieces, up to AWS's size limit for the request, within a deadline."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from werkzeug.serving import DechunkedInput

from .errors import EdgeError

BODY_DEADLINE_S = 30.0  # the whole body must arrive within this, however it trickles
BODY_IDLE_S = 10.0  # and no single read may wait longer than this
DEFAULT_BODY_LIMIT = int(os.environ.get("LOCALCLOUD_MAX_BODY_BYTES", 32 * 1024 * 1024))
CONTROL_BODY_LIMIT = 64 * 1024
INVOKE_BODY_LIMIT = 6 * 1024 * 1024  # 6291456 bytes, synchronous Invoke
LAMBDA_BODY_LIMIT = 70_167_211  # AWS's limit for UpdateFunctionCode, the largest Lambda call
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/[^/]+/invocations/?")
_READ_SIZE = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def body_limit(signing_name: str, path: str) -> int:
    """The largest body AWS accepts for this request (see the module docstring)."""
    if signing_name == "lambda":
        return INVOKE_BODY_LIMIT if _INVOKE_PATH.fullmatch(path) else LAMBDA_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, length-delimited or chunked, bounded by `limit` and a deadline."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH", "").strip()
    chunked = environ.get("HTTP_TRANSFER_ENCODING") is not None
    if chunked and environ["HTTP_TRANSFER_ENCODING"].strip().lower() != "chunked":
        raise EdgeError(400, "BadRequest", "Only Transfer-Encoding: chunked is supported.")
    if chunked and length_text:
        raise EdgeError(400, "BadRequest", "Content-Length and Transfer-Encoding together.")
    reader = _Reader(stream, environ.get("werkzeug.socket"))
    if isinstance(stream, DechunkedInput):
        # werkzeug's dechunker trusts chunk sizes and counts empty reads at EOF as data.
        reader.stream = stream._rfile
        return _read_chunked(reader, limit)
    if chunked and not environ.get("wsgi.input_terminated"):  # the raw stream (http/wsgi.py)
        return _read_chunked(reader, limit)
    if length_text:
        if not length_text.isdigit():
            raise EdgeError(400, "BadRequest", f"Invalid Content-Length {length_text!r}.")
        length = int(length_text)
        if length > limit:
            raise _too_large(limit)
        return reader.exactly(length)
    if environ.get("wsgi.input_terminated"):  # a server that dechunked already
        data = reader.up_to(limit + 1)
        if len(data) > limit:
            raise _too_large(limit)
        return data
    return b""


class _Reader:
    """Reads from the request stream in pieces, with an idle timeout and a deadline."""

    def __init__(self, stream: Any, sock: Any) -> None:
        self.stream = stream
        self.deadline = time.monotonic() + BODY_DEADLINE_S
        if sock is not None:
            # Stays set for the rest of the request (the edge's server resets it between
            # requests; werkzeug's drain after the response must not wait forever either).
            sock.settimeout(BODY_IDLE_S)

    def _read(self, size: int, line: bool = False) -> bytes:
        if time.monotonic() > self.deadline:
            raise _timeout()
        try:
            return self.stream.readline(size) if line else self.stream.read(size)
        except TimeoutError:
            raise _timeout() from None

    def exactly(self, length: int) -> bytes:
        """`length` bytes; IncompleteBody if the stream ends first."""
        parts, remaining = [], length
        while remaining:
            piece = self._read(min(remaining, _READ_SIZE))
            if not piece:
                raise EdgeError(
                    400,
                    "IncompleteBody",
                    f"The body ended after {length - remaining} of the "
                    f"{length} bytes its Content-Length declared.",
                )
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)

    def up_to(self, length: int) -> bytes:
        """At most `length` bytes, fewer if the stream ends."""
        parts, remaining = [], length
        while remaining:
            piece = self._read(min(remaining, _READ_SIZE))
            if not piece:
                break
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)

    def line(self) -> bytes:
        """One CRLF-terminated line of chunked framing (at most 1 KiB)."""
        text = self._read(1024, line=True)
        if not text.endswith(b"\n"):
            raise EdgeError(400, "BadRequest", "Malformed chunked encoding.")
        return text.rstrip(b"\r\n")


def _read_chunked(reader: _Reader, limit: int) -> bytes:
    """Decode a chunked body, refusing it as soon as it outgrows `limit`."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise EdgeError(400, "BadRequest", f"Invalid chunk size {size_text[:20]!r}.")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(100):  # trailer fields up to the empty line
                if not reader.line():
                    return b"".join(parts)
            raise EdgeError(400, "BadRequest", "Too many trailer fields.")
        total += size
        if total > limit:
            raise _too_large(limit)
        parts.append(reader.exactly(size))
        if reader.line():
            raise EdgeError(400, "BadRequest", "A chunk is longer than its declared size.")


def _too_large(limit: int) -> EdgeError:
    """AWS's 413 for a body over the limit (Lambda's wording for Lambda requests)."""
    message = f"Request must be smaller than {limit} bytes"
    if limit == INVOKE_BODY_LIMIT:
        message += " for the InvokeFunction operation"
    return EdgeError(413, "RequestEntityTooLarge", message)


def _timeout() -> EdgeError:
    """AWS's answer to a body that does not arrive in time (S3's RequestTimeout)."""
    return EdgeError(
        400,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    )
