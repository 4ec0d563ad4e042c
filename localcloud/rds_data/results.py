"""Result sets as the Data API returns them: Field records, columnMetadata and JSON records.

The Data API runs on JDBC (MySQL Connector/J semantics): a column's JDBC type decides the
Field member (INTEGER family: longValue; FLOAT/REAL/DOUBLE: doubleValue; BOOLEAN/BIT:
booleanValue; binary types: blobValue; everything else, DECIMAL and dates included:
stringValue). Connector/J reports TINYINT(1) (MySQL's BOOLEAN) as BIT, so it comes back as a
boolean. Values arrive from pymysql as MySQL's own text (see DECODERS), so dates, times and
decimals are formatted here rather than by Python's types.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pymysql import converters
from pymysql.charset import charset_by_id
from pymysql.constants import FIELD_TYPE as T
from pymysql.constants import FLAG

from . import errors

MAX_RESPONSE_BYTES = 1024 * 1024  # "1 MiB in the result set returned by the database"
MAX_JSON_BYTES = 10 * 1024 * 1024  # formattedRecords: "limited to 10 megabytes"
LONG_MAX = 2**63 - 1
BINARY_CHARSET = 63

_INTEGERS = {T.TINY, T.SHORT, T.INT24, T.LONG, T.LONGLONG}
_BLOBS = {T.TINY_BLOB, T.MEDIUM_BLOB, T.LONG_BLOB, T.BLOB}
_TEMPORAL = {T.DATETIME, T.TIMESTAMP, T.TIME}
_MB_MAXLEN = {"utf8mb4": 4, "utf8": 3, "utf8mb3": 3, "ucs2": 2, "utf16": 4, "utf32": 4}
_SIZES = ((255, "TINY"), (65535, ""), (16777215, "MEDIUM"))

# pymysql decoders: integers and floats as Python numbers, everything else as MySQL's text
# (str) or, for binary-charset columns, bytes. Encoders stay pymysql's own.
DECODERS: dict[Any, Any] = {
    **converters.encoders,
    **{code: converters.through for code in range(256)},
    **{code: int for code in _INTEGERS},
    T.FLOAT: float,
    T.DOUBLE: float,
}


@dataclass(frozen=True)
class Column:
    """What the protocol says about one result column (pymysql's FieldDescriptorPacket)."""

    label: str
    name: str
    table: str
    type_code: int
    length: int
    flags: int
    scale: int
    charsetnr: int

    @classmethod
    def from_field(cls, f: Any) -> Column:
        """From pymysql's field packet; expressions have no original name or table."""
        return cls(
            label=f.name,
            name=f.org_name or f.name,
            table=f.org_table or f.table_name or "",
            type_code=f.type_code,
            length=f.length,
            flags=f.flags,
            scale=f.scale,
            charsetnr=f.charsetnr,
        )

    @property
    def binary(self) -> bool:
        """True for binary strings (BLOB, BINARY, VARBINARY): the `binary` character set."""
        return self.charsetnr == BINARY_CHARSET

    @property
    def unsigned(self) -> bool:
        """True for UNSIGNED numeric columns."""
        return bool(self.flags & FLAG.UNSIGNED)


@dataclass(frozen=True)
class ResultOptions:
    """The request's resultSetOptions."""

    decimal_as_number: bool = False  # decimalReturnType DOUBLE_OR_LONG
    long_as_string: bool = False  # longReturnType STRING

    @classmethod
    def from_request(cls, options: dict[str, Any] | None) -> ResultOptions:
        """From the request's resultSetOptions (defaults STRING and LONG)."""
        options = options or {}
        return cls(
            decimal_as_number=options.get("decimalReturnType") == "DOUBLE_OR_LONG",
            long_as_string=options.get("longReturnType") == "STRING",
        )


def kind(col: Column) -> str:
    """The Field member of a column's values: long, double, boolean, blob, decimal, string, null."""
    code = col.type_code
    if code == T.TINY and col.length == 1:
        return "boolean"  # TINYINT(1): Connector/J's tinyInt1isBit
    if code in _INTEGERS:
        return "long"
    if code in (T.FLOAT, T.DOUBLE):
        return "double"
    if code in (T.DECIMAL, T.NEWDECIMAL):
        return "decimal"
    if code == T.BIT:
        return "boolean" if col.length == 1 else "blob"
    if code == T.NULL:
        return "null"
    if code == T.GEOMETRY:
        return "blob"
    if code in (T.STRING, T.VAR_STRING, T.VARCHAR, *_BLOBS) and col.binary:
        return "blob"
    return "string"


def jdbc_type(col: Column) -> tuple[int, str]:
    """The java.sql.Types number and type name Connector/J reports for a column."""
    code, unsigned = col.type_code, " UNSIGNED" if col.unsigned else ""
    if code == T.TINY:
        return (-7, "BIT") if col.length == 1 else (-6, "TINYINT" + unsigned)
    if code == T.SHORT:
        return (4 if unsigned else 5), "SMALLINT" + unsigned
    if code == T.INT24:
        return 4, "MEDIUMINT" + unsigned
    if code == T.LONG:
        return (-5 if unsigned else 4), "INT" + unsigned
    fixed = {
        T.LONGLONG: (-5, "BIGINT" + unsigned),
        T.FLOAT: (7, "FLOAT" + unsigned),
        T.DOUBLE: (8, "DOUBLE" + unsigned),
        T.DECIMAL: (3, "DECIMAL" + unsigned),
        T.NEWDECIMAL: (3, "DECIMAL" + unsigned),
        T.NULL: (0, "NULL"),
        T.TIMESTAMP: (93, "TIMESTAMP"),
        T.DATETIME: (93, "DATETIME"),
        T.DATE: (91, "DATE"),
        T.NEWDATE: (91, "DATE"),
        T.TIME: (92, "TIME"),
        T.YEAR: (91, "YEAR"),
        T.BIT: (-7, "BIT"),
        T.JSON: (-1, "JSON"),
        T.GEOMETRY: (-2, "GEOMETRY"),
    }
    if code in fixed:
        return fixed[code]
    if col.flags & FLAG.ENUM:
        return 1, "ENUM"
    if col.flags & FLAG.SET:
        return 1, "SET"
    if code == T.STRING:
        return (-2, "BINARY") if col.binary else (1, "CHAR")
    if code in (T.VAR_STRING, T.VARCHAR):
        return (-3, "VARBINARY") if col.binary else (12, "VARCHAR")
    if code in _BLOBS:
        size = col.length if col.binary else col.length // _mb_maxlen(col.charsetnr)
        prefix = next((p for limit, p in _SIZES if size <= limit), "LONG")
        return (-4, prefix + "BLOB") if col.binary else (-1, prefix + "TEXT")
    return 1111, "UNKNOWN"  # java.sql.Types.OTHER


def _mb_maxlen(charsetnr: int) -> int:
    """Bytes per character of a character set (column lengths are in bytes)."""
    try:
        return _MB_MAXLEN.get(charset_by_id(charsetnr).name, 1)
    except KeyError:
        return 1


def _collation(charsetnr: int) -> str:
    """The collation name of a character set number, '' if pymysql does not know it."""
    try:
        return charset_by_id(charsetnr).collation
    except KeyError:
        return ""


def metadata(col: Column) -> dict[str, Any]:
    """One ColumnMetadata entry, as Connector/J's ResultSetMetaData describes the column."""
    type_number, type_name = jdbc_type(col)
    value_kind = kind(col)
    numeric = value_kind in ("long", "double", "decimal") and type_number != -7
    texty = value_kind == "string" and col.type_code not in (*_TEMPORAL, T.DATE, T.YEAR)
    if value_kind == "decimal":
        precision = col.length - (0 if col.unsigned else 1) - (1 if col.scale > 0 else 0)
    elif texty:
        precision = col.length // _mb_maxlen(col.charsetnr)
    else:
        precision = col.length
    if value_kind == "blob":
        case_sensitive = True
    elif texty:
        case_sensitive = not _collation(col.charsetnr).endswith("_ci")
    else:
        case_sensitive = False
    return {
        "name": col.name,
        "type": type_number,
        "typeName": type_name,
        "label": col.label,
        "schemaName": "",
        "tableName": col.table,
        "isAutoIncrement": bool(col.flags & FLAG.AUTO_INCREMENT),
        "isSigned": numeric and not col.unsigned,
        "isCurrency": False,
        "isCaseSensitive": case_sensitive,
        "nullable": 0 if col.flags & FLAG.NOT_NULL else 1,
        "precision": precision,
        "scale": col.scale if value_kind == "decimal" else 0,
        "arrayBaseColumnType": 0,
    }


def temporal(text: str) -> str:
    """A DATETIME/TIMESTAMP/TIME text without trailing fractional zeros (none for whole seconds)."""
    if "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def _text(value: Any, col: Column) -> str:
    """A string-kind value as the Data API's stringValue text."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return temporal(text) if col.type_code in _TEMPORAL else text


def _bit_true(value: Any) -> bool:
    """A TINYINT(1) number or a BIT(1) byte string as a boolean."""
    return any(value) if isinstance(value, bytes) else bool(value)


def field(value: Any, col: Column, options: ResultOptions) -> dict[str, Any]:
    """One value as a Field (exactly one member set)."""
    if value is None:
        return {"isNull": True}
    value_kind = kind(col)
    if value_kind == "long":
        number = int(value)
        if options.long_as_string or number > LONG_MAX:
            return {"stringValue": str(number)}  # a Java long cannot hold BIGINT UNSIGNED's top
        return {"longValue": number}
    if value_kind == "double":
        return {"doubleValue": float(value)}
    if value_kind == "boolean":
        return {"booleanValue": _bit_true(value)}
    if value_kind == "blob":
        return {"blobValue": bytes(value)}
    if value_kind == "decimal" and options.decimal_as_number:
        return {"longValue": int(value)} if col.scale == 0 else {"doubleValue": float(value)}
    return {"stringValue": _text(value, col)}


def json_value(value: Any, col: Column, options: ResultOptions) -> Any:
    """One value in formattedRecords: number, string, true/false or null."""
    if value is None:
        return None
    value_kind = kind(col)
    if value_kind == "long":
        return str(int(value)) if options.long_as_string else int(value)
    if value_kind == "double":
        return float(value)
    if value_kind == "boolean":
        return _bit_true(value)
    if value_kind == "blob":
        return base64.b64encode(bytes(value)).decode()
    if value_kind == "decimal" and options.decimal_as_number:
        return int(value) if col.scale == 0 else float(value)
    return _text(value, col)


def records(rows: list[tuple], columns: list[Column], options: ResultOptions) -> list[list[dict]]:
    """The response's records: rows of Fields."""
    return [[field(v, c, options) for v, c in zip(row, columns, strict=True)] for row in rows]


def formatted_records(rows: list[tuple], columns: list[Column], options: ResultOptions) -> str:
    """The response's formattedRecords: a JSON array of objects keyed by column label."""
    labels = [c.label for c in columns]
    if len(set(labels)) != len(labels):
        raise errors.bad_request(
            "The result set contains duplicate column names, which JSON format doesn't allow. "
            "Give the columns unique aliases."
        )
    objects = [
        {c.label: json_value(v, c, options) for v, c in zip(row, columns, strict=True)}
        for row in rows
    ]
    text = json.dumps(objects, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_JSON_BYTES:
        raise errors.response_too_large()
    return text


def value_size(value: Any) -> int:
    """Bytes a value takes in the result set (numbers count 8, as a Java long or double)."""
    if value is None:
        return 1
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    return 8


def row_size(row: tuple) -> int:
    """Bytes one row takes in the result set."""
    return sum(value_size(v) for v in row)
