"""CloudWatch Logs for notebooks: recent lines, Lambda REPORT parsing, teardown of course groups.

Lambda writes to `/aws/lambda/<function name>` and the course's ECS tasks to
`/ecs/<task family>`. Neither group is deleted with its function or task, so teardown finds
them by name and deletes them itself.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from typing import Any

from . import cleanup, naming
from .costs import Price
from .lab import Lab

KIND = "log group"
# The course's log groups: a fixed prefix followed by a course resource name.
GROUP_PREFIXES = ("/aws/lambda/", "/ecs/")

# A Lambda REPORT line's numeric fields, by the column name they get.
_REPORT_NUMBERS = {
    "Duration": "duration_ms",
    "Billed Duration": "billed_ms",
    "Memory Size": "memory_mb",
    "Max Memory Used": "max_memory_mb",
    "Init Duration": "init_ms",
}
REPORT_FIELDS = ("request_id", *_REPORT_NUMBERS.values(), "cold")
_REPORT_KEYS = (
    "RequestId",
    "Restore Duration",
    "Billed Restore Duration",
    "Status",
    *_REPORT_NUMBERS,
)
# By key, not by position: AWS puts Init Duration last, the RIE puts it before Duration.
# Longest keys first so that "Billed Duration" is never read as "Duration".
_REPORT_FIELD = re.compile(
    r"(?:^|\s)("
    + "|".join(re.escape(k) for k in sorted(_REPORT_KEYS, key=len, reverse=True))
    + r"):\s*(\S+)"
)


def lambda_group(function_name: str) -> str:
    """The log group Lambda writes a function's logs to."""
    return f"/aws/lambda/{function_name}"


def tail(lab: Lab, group: str, limit: int = 20, *, since_minutes: int = 60) -> list[str]:
    """The group's most recent messages across all its streams, newest last ([] if none yet)."""
    client = lab.client("logs")
    start = int((time.time() - since_minutes * 60) * 1000)
    events: list[dict[str, Any]] = []
    try:
        # filter_log_events interleaves streams by time; a notebook's hour of logs is small,
        # so reading it all is simpler and more reliable than guessing the newest stream.
        pages = client.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=start
        )
        for page in pages:
            events.extend(page["events"])
    except client.exceptions.ResourceNotFoundException:
        return []  # Lambda creates the group on the first invoke; AWS may take seconds.
    events.sort(key=lambda event: event["timestamp"])  # stable: keeps same-ms lines in order
    return [event["message"].rstrip("\n") for event in events[-limit:]] if limit > 0 else []


def parse_report_line(line: str) -> dict[str, Any] | None:
    """A Lambda REPORT line as a dict (init_ms NaN and cold False when warm); None otherwise."""
    text = line.strip()
    if not text.startswith("REPORT "):
        return None
    fields = dict(_REPORT_FIELD.findall(text))
    if "RequestId" not in fields:
        return None
    row: dict[str, Any] = {"request_id": fields["RequestId"]}
    for key, column in _REPORT_NUMBERS.items():
        row[column] = float(fields[key]) if key in fields else math.nan
    row["cold"] = not math.isnan(row["init_ms"])  # Init Duration appears on cold starts only
    return {column: row[column] for column in REPORT_FIELDS}


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course log group (all runs): the part after the prefix is a course name."""
    paginator = lab.client("logs").get_paginator("describe_log_groups")
    for prefix in GROUP_PREFIXES:
        for page in paginator.paginate(logGroupNamePrefix=prefix + naming.run_prefix()):
            for group in page["logGroups"]:
                parts = naming.parse_name(group["logGroupName"][len(prefix) :])
                if parts is not None:
                    yield cleanup.Resource(KIND, group["logGroupName"], parts.pattern, parts.run_id)


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a log group (and every stream and event in it)."""
    lab.client("logs").delete_log_group(logGroupName=resource.identifier)


# A function or task that still runs writes to its group, and would create it again.
RESOURCE_KINDS = [
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function", "ecs service", "ecs task"))
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "logs_ingested_gb": Price(0.50, "GB ingested", "CloudWatch Logs, standard class"),
    "logs_gb_month": Price(0.03, "GB-month", "CloudWatch Logs storage (compressed)"),
}
