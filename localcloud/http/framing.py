"""Reading a request's head (request line and header fields) within limits, and refusing
requests whose framing is malformed or could be read two ways.

The rules are RFC 9112's (https://www.rfc-editor.org/rfc/rfc9112) with the classification of
AWS's HTTP desync mitigation (https://github.com/aws/http-desync-guardian, used by ALB's
desync mitigation mode, https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#desync-mitigation-mode):
a request whose boundaries cannot be told is refused (`Refusal`, answered with a status line
and the service's own error body, then the connection closes); one that servers could read
differently ("ambiguous": Content-Length with Transfer-Encoding, a repeated Content-Length,
Transfer-Encoding in HTTP/1.0) is served with Transfer-Encoding alone and its connection
closed afterwards, or refused where the service's limits say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_TCHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_TARGET = re.compile(rb"/[\x21-\x7e]*|\*")  # origin-form or asterisk-form, visible ASCII only
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than HT
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")  # under 2**60: bounded, not unlimited
_CHUNK_LINE = 4096  # a chunk-size line with its extensions
_EMPTY_LINES = 8  # empty lines tolerated before a request line (RFC 9112 2.2)

MESSAGES = {
    400: "Bad Request",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class Refusal(ValueError):
    """A request the listener answers with `status` and then closes the connection on."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail or MESSAGES.get(status, str(status)))
        self.status = status
        self.message = MESSAGES.get(status, "Bad Request")  # what the client is told


@dataclass(frozen=True)
class Limits:
    """What a listener accepts; the defaults are an ALB's documented request header limits."""

    line: int = 16 * 1024  # the request line, and each header line
    head: int = 64 * 1024  # the request line and all header lines together
    too_large: int = 400  # the status for a head over these limits
    max_body: int | None = None  # bodies over this many bytes are refused with 413
    refuse_ambiguous: bool = False  # ambiguous framing: 400 instead of "serve, then close"


@dataclass(frozen=True)
class RequestHead:
    """A request line and header fields that passed the checks."""

    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: list[tuple[str, str]]
    length: int | None  # the body's Content-Length; None when chunked or absent
    chunked: bool
    ambiguous: bool  # framing servers may read differently: both connections close after it
    close: bool  # the client connection closes after the response
    expect_continue: bool


def read_head(rfile: BinaryIO, limits: Limits) -> RequestHead | None:
    """The next request's head; None when the client closed the connection between requests.

    Refusal for a malformed or oversized head, ConnectionError when the client goes mid-head.
    """
    line = _request_line(rfile, limits)
    if line is None:
        return None
    method, target, version = _parse_request_line(line)
    fields = _fields(rfile, limits, limits.head - len(line))
    return _framing(method, target, version, fields, limits)


def read_trailers(rfile: BinaryIO, limits: Limits) -> None:
    """Read and drop a chunked body's trailer section, within the header limits."""
    _fields(rfile, limits, limits.head)


def chunk_size(rfile: BinaryIO) -> int:
    """The size from a chunk-size line (extensions ignored); Refusal if it is not one."""
    line = rfile.readline(_CHUNK_LINE)
    if not line.endswith(b"\n"):
        if len(line) >= _CHUNK_LINE:
            raise Refusal(400, "chunk-size line too long")
        raise ConnectionError("client closed the connection mid-body")
    size = line.split(b";", 1)[0].strip(b" \t\r\n")
    if not _CHUNK_SIZE.fullmatch(size):
        raise Refusal(400, f"invalid chunk size {size[:20]!r}")
    return int(size, 16)


def chunk_end(rfile: BinaryIO) -> None:
    """Read the CRLF that must follow a chunk's data (Refusal if something else does)."""
    if rfile.readline(3) not in (b"\r\n", b"\n"):
        raise Refusal(400, "chunk data longer than its size")


def _request_line(rfile: BinaryIO, limits: Limits) -> bytes | None:
    """The request line without its line end, or None at the end of the connection."""
    for _ in range(_EMPTY_LINES):
        first = rfile.peek(1)[:1]  # type: ignore[attr-defined]
        if not first:
            return None
        # A TLS handshake or binary garbage has no line end to wait for: refuse at once.
        if first not in (b"\r", b"\n") and first[0] not in _TCHARS:
            raise Refusal(400, f"not an HTTP request line: {first!r}")
        line = rfile.readline(limits.line + 1)
        if len(line) > limits.line:
            raise Refusal(limits.too_large, "request line too long")
        if not line.endswith(b"\n"):
            raise ConnectionError("client closed the connection mid-request-line")
        line = _strip_line_end(line)
        if line:
            return line
    raise Refusal(400, "too many empty lines")


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version) of a request line; Refusal (400 or 505) if it is malformed."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise Refusal(400, "a request line is method, target and version, one space apart")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise Refusal(400, "invalid method")
    found = _VERSION.fullmatch(version)
    if not found:
        raise Refusal(400, "invalid HTTP version")
    if found.group(1) != b"1":  # e.g. HTTP/2.0 on an HTTP/1 connection
        raise Refusal(505, version.decode("ascii"))
    if not _TARGET.fullmatch(target) or (target == b"*" and method != b"OPTIONS"):
        raise Refusal(400, "invalid request target")
    minor = "0" if found.group(2) == b"0" else "1"  # HTTP/1.x above 1.1 is served as 1.1
    return method.decode("ascii"), target.decode("ascii"), f"HTTP/1.{minor}"


def _fields(rfile: BinaryIO, limits: Limits, budget: int) -> list[tuple[str, str]]:
    """Header (or trailer) fields up to the empty line, within the line and total limits."""
    fields: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(limits.line + 1)
        budget -= len(line)
        if len(line) > limits.line or budget < 0:
            raise Refusal(limits.too_large, "request header too large")
        if not line.endswith(b"\n"):
            raise ConnectionError("client closed the connection mid-head")
        line = _strip_line_end(line)
        if not line:
            return fields
        if line[:1] in (b" ", b"\t"):
            raise Refusal(400, "obsolete line folding")  # RFC 9112 5.2
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):  # e.g. "Transfer-Encoding : chunked"
            raise Refusal(400, f"invalid header field name {name[:40]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise Refusal(400, f"control character in header field {name.decode()}")
        fields.append((name.decode("ascii"), value.decode("latin-1")))


def _framing(
    method: str, target: str, version: str, fields: list[tuple[str, str]], limits: Limits
) -> RequestHead:
    """The head with its body framing and connection handling worked out (RFC 9112 6)."""
    named: dict[str, list[str]] = {}
    for name, value in fields:
        named.setdefault(name.lower(), []).append(value)
    hosts = named.get("host", [])
    if len(hosts) > 1 or (version == "HTTP/1.1" and not hosts):
        raise Refusal(400, "an HTTP/1.1 request has exactly one Host")  # RFC 9112 3.2
    lengths = [v.strip() for value in named.get("content-length", []) for v in value.split(",")]
    if any(not _LENGTH.fullmatch(v) for v in lengths) or len({int(v) for v in lengths}) > 1:
        raise Refusal(400, "invalid or conflicting Content-Length")
    codings = [
        c.strip().lower() for value in named.get("transfer-encoding", []) for c in value.split(",")
    ]
    codings = [c for c in codings if c and c != "identity"]  # identity: no coding at all
    if codings.count("chunked") > 1:
        raise Refusal(400, "chunked applied twice")
    if any(c != "chunked" for c in codings):
        raise Refusal(501, "unsupported Transfer-Encoding")  # as an ALB answers it
    has_coding = "transfer-encoding" in named
    chunked = codings == ["chunked"]
    ambiguous = len(lengths) > 1 or (has_coding and (bool(lengths) or version == "HTTP/1.0"))
    if ambiguous and limits.refuse_ambiguous:
        raise Refusal(400, "ambiguous message framing")
    length = None if chunked or not lengths else int(lengths[0])
    if limits.max_body is not None and (length or 0) > limits.max_body:
        raise Refusal(413, "body over the payload limit")
    tokens = {t.strip().lower() for value in named.get("connection", []) for t in value.split(",")}
    close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    expect = [v.strip().lower() for v in named.get("expect", [])]
    return RequestHead(
        method=method,
        target=target,
        version=version,
        headers=fields,
        length=length,
        chunked=chunked,
        ambiguous=ambiguous,
        close=close or ambiguous,
        expect_continue=version == "HTTP/1.1" and "100-continue" in expect,
    )


def _strip_line_end(line: bytes) -> bytes:
    """A line without its CRLF (or bare LF)."""
    return line[:-2] if line.endswith(b"\r\n") else line[:-1]
