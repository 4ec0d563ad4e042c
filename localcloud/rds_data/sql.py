"""SQL text and parameters: `:name` placeholders to pymysql's pyformat, and Field values to Python.

The Data API takes SQL with `:name` placeholders and a list of typed parameters. pymysql binds
`%(name)s` placeholders by escaping each value into a literal (its standard client-side
binding), so the scanner here rewrites placeholders, doubles every other `%` (pymysql applies
`%` formatting to the whole text), and leaves string literals, quoted identifiers and comments
alone. Values are never put into the SQL text by this module.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from . import errors

MAX_SQL_LENGTH = 65536
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME = re.compile(r"[A-Za-z0-9_]+")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SCALARS = ("stringValue", "longValue", "doubleValue", "booleanValue", "blobValue")


@dataclass
class Scan:
    """What the scanner found: the rewritten text, placeholder names in order, statement count."""

    text: str
    names: list[str] = field(default_factory=list)
    multiple_statements: bool = False


def scan(sql: str) -> Scan:
    """Rewrite `:name` to `%(name)s` and `%` to `%%`, outside literals, identifiers and comments."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(sql)
    ended = False  # a `;` outside literals was seen: anything but space/comments after it is a 2nd
    multiple = False
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            j = _quoted_end(sql, i)
            if ended:
                multiple = True
        elif ch == "#" or (ch == "-" and sql.startswith("--", i) and _dash_comment(sql, i)):
            j = sql.find("\n", i)
            j = n if j < 0 else j + 1
        elif ch == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif ch == ":" and sql.startswith("::", i):
            j = i + 2  # not MySQL syntax; passed through so the server reports it, not bound
            multiple = multiple or ended
        elif ch == ":" and i + 1 < n and _NAME_START.match(sql[i + 1]):
            match = _NAME.match(sql, i + 1)
            assert match is not None  # the first character already matched
            names.append(match.group())
            out.append(f"%({match.group()})s")
            i = match.end()
            multiple = multiple or ended
            continue
        elif ch == ";":
            ended = True
            j = i + 1
        else:
            if ended and not ch.isspace():
                multiple = True
            j = i + 1
        out.append(sql[i:j].replace("%", "%%"))
        i = j
    return Scan("".join(out), names, multiple)


def _quoted_end(sql: str, start: int) -> int:
    """The index after the literal or identifier opened at start (unterminated: end of text)."""
    quote = sql[start]
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "\\" and quote != "`":
            i += 2  # a backslash escape (the server's default sql_mode has them)
        elif ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2  # a doubled quote stands for one quote
            else:
                return i + 1
        else:
            i += 1
    return n


def _dash_comment(sql: str, i: int) -> bool:
    """MySQL's `-- ` comment needs a space or control character (or the end) after the dashes."""
    return i + 2 >= len(sql) or sql[i + 2] in " \t\r\n\f\v"


def prepare(sql: str) -> Scan:
    """Scan Data API SQL once, refusing what the Data API refuses (too long, several statements)."""
    if len(sql) > MAX_SQL_LENGTH:
        raise errors.too_long("sql", MAX_SQL_LENGTH)
    found = scan(sql)
    if found.multiple_statements:
        raise errors.validation("Multistatements aren't supported.")
    return found


def arguments(found: Scan, parameters: list[dict[str, Any]] | None) -> dict[str, Any]:
    """pymysql's arguments for a scanned statement: every placeholder needs a parameter."""
    values = {}
    for parameter in parameters or []:
        name = parameter.get("name") or ""
        values[name] = to_python(name, parameter.get("value") or {}, parameter.get("typeHint"))
    for position, name in enumerate(found.names, start=1):
        if name not in values:
            raise errors.bad_request(f'No value specified for parameter {position} (":{name}")')
    return {name: values[name] for name in found.names}


def bind(sql: str, parameters: list[dict[str, Any]] | None) -> tuple[str, dict[str, Any]]:
    """The pymysql query and its arguments for Data API SQL and parameters (errors as AWS's)."""
    found = prepare(sql)
    return found.text, arguments(found, parameters)


def to_python(name: str, value: dict[str, Any], type_hint: str | None = None) -> Any:
    """One Field (a union: exactly one member set) as the Python value pymysql escapes."""
    if value.get("arrayValue") is not None:
        raise errors.bad_request("Array parameters are not supported.")
    if value.get("isNull"):
        return None
    kind = next((k for k in _SCALARS if value.get(k) is not None), None)
    if kind is None:
        raise errors.bad_request(f'Parameter "{name}" has value with no field set')
    raw = value[kind]
    if kind == "longValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "booleanValue":
        return bool(raw)
    if kind == "blobValue":
        return bytes(raw)
    if type_hint:  # the hints apply to string values only, as the API reference says
        return hinted(str(raw), type_hint)
    return str(raw)


def hinted(text: str, type_hint: str) -> Any:
    """A string parameter with a typeHint, checked against the documented formats."""
    if type_hint == "DATE":
        return _date(text)
    if type_hint == "TIME":
        return _time(text)
    if type_hint == "TIMESTAMP":
        return _timestamp(text)
    if type_hint == "DECIMAL":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise errors.bad_request(f'Cannot parse decimal "{text}"')
        return number
    if type_hint == "UUID":
        if not _UUID.fullmatch(text):
            raise errors.bad_request(f"Invalid UUID string: {text}")
        return str(uuid.UUID(text))
    if type_hint == "JSON":
        return text  # MySQL takes JSON as text; the server checks it where a JSON column needs it
    raise errors.validation(
        f"1 validation error detected: Value '{type_hint}' at 'typeHint' failed to satisfy "
        "constraint: Member must satisfy enum value set: [JSON, UUID, TIMESTAMP, DATE, TIME, "
        "DECIMAL]"
    )


def _cannot_parse(text: str) -> Exception:
    """The Data API's error for a date or time string not in its documented format."""
    return errors.bad_request(f'Cannot parse date or time "{text}"')


def _micros(fraction: str | None) -> int:
    """Microseconds from up to nine fractional digits (MySQL keeps at most six)."""
    return int((fraction or "0").ljust(6, "0")[:6])


def _date(text: str) -> dt.date:
    """YYYY-MM-DD."""
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise _cannot_parse(text) from None


def _time(text: str) -> dt.time:
    """HH:MM:SS[.FFF]."""
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        hours, minutes, seconds, fraction = match.groups()
        return dt.time(int(hours), int(minutes), int(seconds), _micros(fraction))
    except ValueError:
        raise _cannot_parse(text) from None


def _timestamp(text: str) -> dt.datetime:
    """YYYY-MM-DD HH:MM:SS[.FFF] (a space, no `T`, no zone: ISO 8601 input is refused)."""
    match = _TIMESTAMP.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        *parts, fraction = match.groups()
        return dt.datetime(*(int(p) for p in parts), _micros(fraction))
    except ValueError:
        raise _cannot_parse(text) from None
