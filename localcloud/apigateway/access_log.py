"""A stage's access log: one line per request, in the stage's format, to CloudWatch Logs.

The stage's accessLogSettings name a log group ARN and a format of `$context` variables
("Set up CloudWatch logging for REST APIs",
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html; the
variables: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html).
A variable without a value is written as `-`, as AWS does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+[A-Za-z0-9_])")


@dataclass(frozen=True)
class AccessLog:
    """Where a stage's access log goes and its line format."""

    group: str
    line_format: str


def settings_of(stage: Mapping[str, Any]) -> AccessLog | None:
    """The stage's access log settings (GetStages item), or None when it has none."""
    settings = stage.get("accessLogSettings") or {}
    arn, line_format = settings.get("destinationArn") or "", settings.get("format") or ""
    if ":log-group:" not in arn or not line_format:
        return None
    group = arn.split(":log-group:", 1)[1].removesuffix(":*")
    return AccessLog(group, line_format)


def render(line_format: str, values: Mapping[str, Any]) -> str:
    """The format with every `$context.name` replaced by its value (or `-`)."""

    def value(found: re.Match[str]) -> str:
        known = values.get(found.group(1))
        return "-" if known is None or known == "" else str(known)

    return _VARIABLE.sub(value, line_format)
