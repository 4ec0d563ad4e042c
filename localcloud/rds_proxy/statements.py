"""What a client's SQL text means to the proxy: tracked session state, pinning, or neither.

The rules are AWS's for Aurora MySQL ("Avoiding pinning an RDS Proxy",
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy-pinning.html):
changes to the tracked variables and USE are carried with the session; user variables,
untracked system variables, prepared statements, temporary tables, table locks, named locks
and statements over 16 KB pin the session to its database connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PIN_TEXT_BYTES = 16 * 1024

# The variables RDS Proxy tracks for MySQL (canonical name first, then its aliases).
TRACKED = {
    "autocommit": "autocommit",
    "auto_increment_increment": "auto_increment_increment",
    "character_set_client": "character_set_client",
    "character_set_connection": "character_set_connection",
    "character_set_database": "character_set_database",
    "character_set_filesystem": "character_set_filesystem",
    "character_set_results": "character_set_results",
    "character_set_server": "character_set_server",
    "collation_connection": "collation_connection",
    "collation_database": "collation_database",
    "collation_server": "collation_server",
    "interactive_timeout": "interactive_timeout",
    "net_write_timeout": "net_write_timeout",
    "query_cache_type": "query_cache_type",
    "session_track_schema": "session_track_schema",
    "sql_mode": "sql_mode",
    "time_zone": "time_zone",
    "transaction_isolation": "transaction_isolation",
    "tx_isolation": "transaction_isolation",
    "transaction_read_only": "transaction_read_only",
    "tx_read_only": "transaction_read_only",
    "wait_timeout": "wait_timeout",
}

_COMMENTS = re.compile(r"/\*(?!!).*?\*/|(?:--\s|#)[^\n]*", re.S)
_PINNING = [
    (re.compile(r"^\s*PREPARE\b", re.I), "a prepared statement"),
    (re.compile(r"^\s*LOCK\s+TABLES?\b", re.I), "LOCK TABLES"),
    (re.compile(r"^\s*FLUSH\s+TABLES?\b.*\bWITH\s+READ\s+LOCK\b", re.I | re.S), "a read lock"),
    (re.compile(r"\bGET_LOCK\s*\(", re.I), "GET_LOCK"),
    (
        re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMPORARY\s+TABLE\b", re.I),
        "a temporary table",
    ),
    (re.compile(r"@[A-Za-z0-9_$.]+\s*:=|\bINTO\s+@", re.I), "a user variable"),
]
_SET = re.compile(r"^\s*SET\s+(.*)$", re.I | re.S)
_USE = re.compile(r"^\s*USE\s+(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)\s*;?\s*$", re.I)
_DROP_DB = re.compile(r"^\s*DROP\s+(?:DATABASE|SCHEMA)\b", re.I)
_NAMES = re.compile(r"^NAMES\s+(.+)$", re.I | re.S)
_CHARSET = re.compile(r"^(?:CHARACTER\s+SET|CHARSET)\s+(.+)$", re.I | re.S)
_SESSION_TX = re.compile(
    r"^(?:SESSION\s+|LOCAL\s+|@@SESSION\.)?TRANSACTION\s+(ISOLATION\s+LEVEL\s+.+|READ\s+\w+)$",
    re.I | re.S,
)
_ASSIGNMENT = re.compile(
    r"^(?:(GLOBAL|PERSIST|PERSIST_ONLY)\s+|(?:SESSION|LOCAL)\s+)?"
    r"(@@(?:(global|session|local|persist)\.)?)?(@)?`?([A-Za-z0-9_$]+)`?\s*(?::=|=)\s*(.+)$",
    re.I | re.S,
)


@dataclass
class Meaning:
    """What one COM_QUERY does to the session."""

    pin_reason: str | None = None  # pins the session (unless filtered)
    is_set: bool = False  # a SET statement (EXCLUDE_VARIABLE_SETS applies to its pinning)
    tracked: dict[str, str] = field(default_factory=dict)  # tracked state it changes
    schema: str | None = None  # USE <schema>
    drops_schema: bool = False


def strip_comments(sql: str) -> str:
    """The statement without comments (executable /*! ... */ comments stay)."""
    return _COMMENTS.sub(" ", sql).strip()


def split_top_level(text: str, separator: str) -> list[str]:
    """Split at `separator` outside quotes and parentheses."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def classify(sql_bytes: bytes) -> Meaning:
    """Decide what a query does to the session: tracked change, pinning, or nothing."""
    if len(sql_bytes) > PIN_TEXT_BYTES:
        return Meaning(pin_reason="a statement larger than 16 KB")
    sql = strip_comments(sql_bytes.decode("utf-8", "replace"))
    statements = split_top_level(sql, ";")
    if len(statements) > 1:
        meanings = [classify(s.encode()) for s in statements]
        for meaning in meanings:
            if meaning.pin_reason or meaning.tracked or meaning.schema or meaning.drops_schema:
                # A batch's state changes cannot be followed statement by statement here.
                return Meaning(pin_reason="session state changed in a multi-statement query")
        return Meaning()
    if not statements:
        return Meaning()
    statement = statements[0]
    if found := _USE.match(statement):
        return Meaning(schema=found.group(1).strip("`").replace("``", "`"))
    if _DROP_DB.match(statement):
        return Meaning(drops_schema=True)
    if found := _SET.match(statement):
        return _classify_set(found.group(1))
    for pattern, reason in _PINNING:
        if pattern.search(statement):
            return Meaning(pin_reason=reason)
    return Meaning()


def _classify_set(body: str) -> Meaning:
    tracked: dict[str, str] = {}
    for assignment in split_top_level(body, ","):
        if found := _NAMES.match(assignment):
            tracked["names"] = _normal(found.group(1))
            continue
        if found := _CHARSET.match(assignment):
            tracked["character set"] = _normal(found.group(1))
            continue
        if found := _SESSION_TX.match(assignment):
            words = _normal(found.group(1))
            if words.startswith("isolation"):
                tracked["transaction_isolation"] = words.split("level", 1)[1].strip()
            else:
                tracked["transaction_read_only"] = words
            continue
        found = _ASSIGNMENT.match(assignment)
        if found is None:
            return Meaning(pin_reason=f"SET {assignment[:40]}", is_set=True)
        global_word, _, scope, user, name, value = found.groups()
        if user:
            return Meaning(pin_reason="a user variable", is_set=True)
        if global_word or (scope or "").lower() in ("global", "persist"):
            return Meaning(pin_reason="SET GLOBAL", is_set=True)
        canonical = TRACKED.get(name.lower())
        if canonical is None:
            return Meaning(pin_reason=f"SET of untracked variable {name.lower()}", is_set=True)
        tracked[canonical] = _normal(value)
    return Meaning(is_set=True, tracked=tracked)


def _normal(value: str) -> str:
    """A value in a comparable form: spaces collapsed, case folded outside quotes."""
    value = " ".join(value.split())
    if value[:1] in ("'", '"'):
        return value
    return value.lower()


def apply_statements(state: dict[str, str]) -> list[str]:
    """The statements that put a fresh database connection into this tracked state."""
    statements = []
    for name, value in sorted(state.items()):
        if name == "schema":
            statements.append(f"USE `{value.replace('`', '``')}`")
        elif name == "names":
            statements.append(f"SET NAMES {value}")
        elif name == "character set":
            statements.append(f"SET CHARACTER SET {value}")
        elif name == "transaction_isolation" and not value.startswith(("'", '"')):
            statements.append(f"SET SESSION TRANSACTION ISOLATION LEVEL {value}")
        elif name == "transaction_read_only" and value.startswith("read"):
            statements.append(f"SET SESSION TRANSACTION {value}")
        else:
            statements.append(f"SET SESSION {name} = {value}")
    return statements
