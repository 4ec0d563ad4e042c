"""FilterCriteria: EventBridge patterns matched against each stream record.

The syntax of https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html:
filters are ORed, every field a pattern names must match, and a field's list of conditions
matches when one of them does (equals, prefix, suffix, anything-but, numeric, exists,
equals-ignore-case). Strings match exactly; numbers by their text.
"""

from __future__ import annotations

import json
from typing import Any

from ...protocols import ServiceError

MAX_FILTERS = 5
_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def parse(criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of a FilterCriteria, checked; 400 for one that is not a JSON pattern."""
    filters = (criteria or {}).get("Filters") or []
    if len(filters) > MAX_FILTERS:
        raise ServiceError(
            "InvalidParameterValueException",
            f"The number of filters exceeds the limit of {MAX_FILTERS}.",
        )
    patterns = []
    for entry in filters:
        try:
            pattern = json.loads(entry.get("Pattern") or "")
        except ValueError:
            pattern = None
        if not isinstance(pattern, dict) or not _valid(pattern):
            raise ServiceError(
                "InvalidParameterValueException", "Invalid filter pattern definition."
            )
        patterns.append(pattern)
    return patterns


def matches_any(patterns: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    """True when there are no patterns or one of them matches the record."""
    return not patterns or any(matches(p, record) for p in patterns)


def matches(pattern: dict[str, Any], value: Any) -> bool:
    """One pattern against one JSON object."""
    if not isinstance(value, dict):
        return False
    for key, expected in pattern.items():
        present = key in value
        actual = value.get(key)
        if isinstance(expected, dict):
            if not present or not matches(expected, actual):
                return False
        elif not _field_matches(expected, present, actual):
            return False
    return True


def _field_matches(conditions: list[Any], present: bool, actual: Any) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    for condition in conditions:
        if isinstance(condition, dict) and "exists" in condition:
            if condition["exists"] == present:
                return True
            continue
        if present and any(_condition(condition, v) for v in values):
            return True
    return False


def _condition(condition: Any, value: Any) -> bool:
    """One condition of a field's list against one value."""
    if not isinstance(condition, dict):
        return _same(condition, value)
    (kind, argument), *_ = condition.items()
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(argument)
    if kind == "suffix":
        return isinstance(value, str) and value.endswith(argument)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(argument).lower()
    if kind == "anything-but":
        if isinstance(argument, dict):
            return not _condition(argument, value)
        excluded = argument if isinstance(argument, list) else [argument]
        return not any(_same(e, value) for e in excluded)
    if kind == "numeric":
        number = _number(value)
        if number is None:
            return False
        pairs = zip(argument[::2], argument[1::2], strict=True)
        return all(_NUMERIC_OPS[op](number, float(bound)) for op, bound in pairs)
    return False


def _same(expected: Any, value: Any) -> bool:
    """Equality the way patterns compare: strings exactly, numbers by their text."""
    if isinstance(expected, bool) or expected is None or isinstance(value, bool):
        return expected is value or expected == value and type(expected) is type(value)
    if isinstance(expected, int | float):
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (json.dumps(expected) == json.dumps(value))
        )
    return expected == value


def _number(value: Any) -> float | None:
    """A JSON number, or a DynamoDB N value's text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _valid(pattern: dict[str, Any]) -> bool:
    """Every leaf of a pattern is a list of conditions, every nested part an object."""
    for value in pattern.values():
        if isinstance(value, dict):
            if not value or not _valid(value):
                return False
        elif not isinstance(value, list) or not value:
            return False
        else:
            for condition in value:
                if isinstance(condition, dict) and not _valid_condition(condition):
                    return False
    return True


def _valid_condition(condition: dict[str, Any]) -> bool:
    if len(condition) != 1:
        return False
    (kind, argument), *_ = condition.items()
    if kind == "numeric":
        if not isinstance(argument, list) or len(argument) % 2 or not argument:
            return False
        return all(
            op in _NUMERIC_OPS and isinstance(n, int | float)
            for op, n in zip(argument[::2], argument[1::2], strict=True)
        )
    return kind in ("prefix", "suffix", "equals-ignore-case", "anything-but", "exists")
