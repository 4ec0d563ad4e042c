"""The HTTP request as the edge received it (case-insensitive headers) and ServiceError."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")


class CIHeaders(Mapping[str, str]):
    """A read-only, case-insensitive header mapping that keeps the original spelling."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        # botocore's prepared requests may carry bytes values; the wire is latin-1 text.
        self._items = {
            k.lower(): (k, v.decode("latin-1") if isinstance(v, bytes) else v)
            for k, v in (headers or {}).items()
        }

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class AwsRequest:
    """One HTTP request as the edge received it."""

    method: str
    path: str  # URL path, still percent-encoded
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        # Plain dicts are case-sensitive; header look-ups here must not be.
        if isinstance(self.headers, dict):
            self.headers = CIHeaders(self.headers)

    @classmethod
    def from_url(
        cls, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> AwsRequest:
        """Build a request from a path-with-query (or full URL) as botocore prepares it."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        return cls(method, parts.path or "/", query, headers, body)

    @cached_property
    def payload(self) -> bytes:
        """The body with any Content-Encoding (botocore gzips large PutMetricData) removed."""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if "gzip" in encoding and self.body:
                return gzip.decompress(self.body)
            if "deflate" in encoding and self.body:
                return zlib.decompress(self.body)
        except (OSError, EOFError, zlib.error) as error:
            raise ServiceError("SerializationException", f"Bad {encoding} body: {error}") from None
        return self.body

    @cached_property
    def form(self) -> dict[str, str]:
        """Query-string plus form-encoded body parameters, first value of each."""
        params = {k: v[0] for k, v in self.query.items() if v}
        content_type = (self.headers.get("Content-Type") or "").lower()
        if self.method != "GET" and (not content_type or "x-www-form-urlencoded" in content_type):
            text = self.payload.decode("utf-8", "replace")
            params.update({k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()})
        return params


class ServiceError(Exception):
    """An AWS error response: code (e.g. 'InvalidParameterValue'), message, HTTP status."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        sender_fault: bool = True,
        fields: dict[str, str] | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault
        self.fields = fields or {}  # extra members of JSON error bodies, e.g. Lambda's Reason


def unless_missing(call: Callable[[], T], *missing: str) -> T | None:
    """`call()`'s answer, or None when it fails with one of the `missing` error codes.

    How a provider asks moto whether something exists before an operation moto gets wrong.
    """
    try:
        return call()
    except ServiceError as error:
        if error.code in missing:
            return None
        raise
