"""Parameters against botocore's shapes: JSON types while parsing, constraints afterwards.

AWS checks every request against its model before an operation runs and answers a 400
naming the member (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html):
query-protocol services (and those marked awsQueryCompatible) say MissingParameter or
InvalidParameterValue (ELBv2: ValidationError); a broken constraint is a ValidationException
("1 validation error detected: Value 'Bogus' at 'invocationType' failed to satisfy
constraint: ..."); a member of the wrong JSON type is a BadRequestException where the model
has one (the Data API), a SerializationException on the JSON protocols, and a
ValidationException otherwise. Checked
here, once for every provider: types, required members, enums, one member of a union,
lengths and numeric ranges, and patterns that Python's `re` can compile (a few of
botocore's patterns use Java-only syntax and are not checked).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import OperationModel, Shape

from .request import ServiceError
from .routing import CBOR, JSON, QUERY

_MAX_REPORTED = 5
# Query services that answer a broken constraint with ValidationError, e.g. ELBv2:
# "ValidationError: 1 validation error detected: Value '0' at 'port' failed to satisfy
# constraint: Member must have value greater than or equal to 1".
_SAYS_VALIDATION_ERROR = frozenset({"elbv2"})


class ShapeMismatch(ValueError):
    """A document value of the wrong JSON type for its shape, at a member path."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(f"{path}: expected {expected}")
        self.path = path
        self.expected = expected
        self.value = value

    def within(self, name: str) -> ShapeMismatch:
        """The same mismatch one level further out ('parameters[0].value')."""
        joiner = "" if self.path.startswith("[") or not self.path else "."
        return ShapeMismatch(f"{name}{joiner}{self.path}", self.expected, self.value)


def type_error(operation: OperationModel, protocol: str, mismatch: ShapeMismatch) -> ServiceError:
    """The error AWS answers for a member of the wrong type."""
    message = (
        f"1 validation error detected: Value {_show(mismatch.value)} at "
        f"'{mismatch.path or 'the request body'}' "
        f"failed to satisfy constraint: Member must be {mismatch.expected}"
    )
    return ServiceError(_code(operation, protocol, "type"), message)


def parse_error(operation: OperationModel, protocol: str, detail: str) -> ServiceError:
    """The error AWS answers for a request that does not decode (bad JSON, base64, number)."""
    return ServiceError(
        _code(operation, protocol, "type"), f"Could not parse the request: {detail}"
    )


def check_constraints(operation: OperationModel, protocol: str, params: dict[str, Any]) -> None:
    """Raise AWS's 400 if the parsed parameters break the model's constraints."""
    shape = operation.input_shape
    if shape is None:
        return
    problems: list[tuple[str, str]] = []
    _check(shape, params, "", problems)
    if not problems:
        return
    kinds = {kind for kind, _ in problems}
    kind = "missing" if kinds == {"missing"} else "invalid"
    count = len(problems)
    shown = "; ".join(text for _, text in problems[:_MAX_REPORTED])
    message = f"{count} validation error{'s' if count > 1 else ''} detected: {shown}"
    raise ServiceError(_code(operation, protocol, kind), message)


def _code(operation: OperationModel, protocol: str, kind: str) -> str:
    """The error code this service uses for a missing, invalid or wrongly typed member."""
    model = operation.service_model
    if model.service_name in _SAYS_VALIDATION_ERROR and kind != "type":
        return "ValidationError"
    if protocol == QUERY or "awsQueryCompatible" in model.metadata:
        return "MissingParameter" if kind == "missing" else "InvalidParameterValue"
    if kind != "type":
        return "ValidationException"
    if "BadRequestException" in _error_shape_names(model.service_name, model):
        return "BadRequestException"
    return "SerializationException" if protocol in (JSON, CBOR) else "ValidationException"


@cache
def _error_shape_names(service_name: str, model: Any) -> frozenset[str]:
    """Names of the service's error shapes (cached per service)."""
    return frozenset(shape.name for shape in model.error_shapes)


def _check(shape: Shape, value: Any, path: str, problems: list[tuple[str, str]]) -> None:
    """Collect constraint violations of a value and everything inside it."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type or not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                where = _member_path(path, name)
                problems.append(
                    (
                        "missing",
                        f"Value null at '{where}' failed to satisfy constraint: "
                        "Member must not be null",
                    )
                )
        if shape.metadata.get("union") and sum(v is not None for v in value.values()) != 1:
            problems.append(
                (
                    "invalid",
                    f"Value at '{path or 'the request body'}' failed to satisfy "
                    "constraint: Member must have exactly one of its fields set",
                )
            )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _member_path(path, name), problems)
        return
    _check_bounds(shape, value, path, problems)
    if kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(
                (
                    "invalid",
                    f"Value {_show(value)} at '{path}' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(shape.enum)}]",
                )
            )
        pattern = _pattern(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(
                (
                    "invalid",
                    f"Value {_show(value)} at '{path}' failed to satisfy constraint: "
                    f"Member must satisfy regular expression pattern: {pattern.pattern}",
                )
            )


def _check_bounds(shape: Shape, value: Any, path: str, problems: list[tuple[str, str]]) -> None:
    """Lengths of strings, lists and maps; ranges of numbers."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is None and high is None:
        return
    if shape.type_name in ("string", "list", "map") and isinstance(value, str | list | dict):
        measured, what = len(value), "length"
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(
        value, int | float
    ):
        measured, what = value, "value"
    else:
        return
    if low is not None and measured < low:
        bound = f"Member must have {what} greater than or equal to {low}"
    elif high is not None and measured > high:
        bound = f"Member must have {what} less than or equal to {high}"
    else:
        return
    shown = _show(value) if what == "value" or isinstance(value, str) else "(not shown)"
    problems.append(("invalid", f"Value {shown} at '{path}' failed to satisfy constraint: {bound}"))


def _member_path(path: str, name: str) -> str:
    """AWS names members in lower camel case ('invocationType')."""
    wire = name[:1].lower() + name[1:]
    return f"{path}.{wire}" if path else wire


@cache
def _pattern(text: str | None) -> re.Pattern[str] | None:
    """A model pattern compiled for Python, or None (no pattern, or Java-only syntax)."""
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error:
        return None


def _show(value: Any) -> str:
    """A value as AWS quotes it in messages, cut short."""
    text = value if isinstance(value, str) else repr(value)
    return f"'{text[:100]}'"
