"""Scalar, timestamp and query-key conversions shared by request parsing and serialising."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from botocore.model import Shape


def as_datetime(value: Any) -> datetime:
    """A UTC-aware datetime from a datetime, epoch seconds, ISO 8601 or RFC 822 text."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        return as_datetime(datetime.fromisoformat(text))
    except ValueError:
        return as_datetime(parsedate_to_datetime(text))


def epoch_seconds(value: Any) -> int | float:
    """Epoch seconds, an int when whole (as AWS sends them)."""
    seconds = as_datetime(value).timestamp()
    return int(seconds) if seconds.is_integer() else seconds


def _iso8601(value: Any) -> str:
    """ISO 8601 UTC with milliseconds, the query protocol's timestamp format."""
    moment = as_datetime(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timestamp_out(shape: Shape, value: Any, default: str) -> Any:
    """A timestamp in the shape's declared format, or the protocol's default."""
    fmt = (shape.serialization.get("timestampFormat") or default).lower()
    if fmt == "iso8601":
        return _iso8601(value)
    if fmt == "rfc822":
        return format_datetime(as_datetime(value), usegmt=True)
    return epoch_seconds(value)


def float_out(value: float) -> float | str:
    """Floats for JSON bodies: non-finite values travel as strings."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def text_out(shape: Shape, value: Any) -> str:
    """A scalar as text for XML bodies, headers, and query strings."""
    kind = shape.type_name
    if kind == "timestamp":
        return str(timestamp_out(shape, value, "iso8601"))
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("float", "double"):
        out = float_out(value)
        return out if isinstance(out, str) else repr(out)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    return str(value)


def text_in(shape: Shape, text: str) -> Any:
    """A scalar from text (query form values, URI labels, query-string values)."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean")
        return text.lower() == "true"
    if kind == "timestamp":
        return as_datetime(text)
    if kind == "blob":
        return base64.b64decode(text)
    return text


def query_member_key(member: Shape, name: str) -> str:
    """The query key of a structure member (flattened named lists use the item name)."""
    if member.type_name == "list" and member.serialization.get("flattened"):
        return member.member.serialization.get("name") or member.serialization.get("name", name)
    return member.serialization.get("name", name)
