"""Event source mappings for the course: a function fed by a DynamoDB stream, and its teardown.

`ensure_event_source_mapping` is get-or-create and converges on the settings given; AWS's
defaults retry a failing batch until its records expire, so the course sets the failure
handling explicitly. `log_lines` reads what the function printed since a moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import cleanup, logs, naming
from ..lab import Lab
from ..waiting import wait_for
from .functions import check_range

MAPPING_KIND = "event source mapping"
BATCH_SIZE = (1, 10000)
BATCHING_WINDOW_S = (0, 300)
RETRY_ATTEMPTS = (-1, 10000)
RECORD_AGE_S = (60, 604800)  # or -1: records never expire before the stream's 24 hours


def ensure_event_source_mapping(
    lab: Lab,
    function_name: str,
    stream_arn: str,
    *,
    starting_position: str = "LATEST",
    batch_size: int = 100,
    batching_window_s: int = 0,
    bisect_on_error: bool = False,
    max_retries: int = -1,
    max_record_age_s: int = -1,
    on_failure_arn: str | None = None,
    report_batch_item_failures: bool = False,
    parallelization: int = 1,
    enabled: bool = True,
) -> dict[str, Any]:
    """Get or create the mapping from a stream to a function; update what differs; wait.

    AWS's defaults retry a failing batch until its records expire (a day for DynamoDB),
    blocking the shard: set `max_retries`, `bisect_on_error` and `on_failure_arn` to let a
    bad record go aside instead.
    """
    check_range("batch_size", batch_size, BATCH_SIZE, "records")
    check_range("batching_window_s", batching_window_s, BATCHING_WINDOW_S, "seconds")
    check_range("max_retries", max_retries, RETRY_ATTEMPTS, "retries")
    if max_record_age_s != -1:
        check_range("max_record_age_s", max_record_age_s, RECORD_AGE_S, "seconds (or -1)")
    if starting_position not in ("LATEST", "TRIM_HORIZON"):
        raise ValueError("starting_position must be 'LATEST' or 'TRIM_HORIZON' for a stream")
    desired: dict[str, Any] = {
        "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": batching_window_s,
        "BisectBatchOnFunctionError": bisect_on_error,
        "MaximumRetryAttempts": max_retries,
        "MaximumRecordAgeInSeconds": max_record_age_s,
        "ParallelizationFactor": parallelization,
        "FunctionResponseTypes": ["ReportBatchItemFailures"] if report_batch_item_failures else [],
        "DestinationConfig": {
            "OnFailure": {"Destination": on_failure_arn} if on_failure_arn else {}
        },
    }
    client = lab.client("lambda")
    found = client.list_event_source_mappings(
        EventSourceArn=stream_arn, FunctionName=function_name
    )["EventSourceMappings"]
    if not found:
        mapping = client.create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=function_name,
            StartingPosition=starting_position,
            Enabled=enabled,
            **desired,
        )
        lab.ledger.record(MAPPING_KIND, _mapping_name(mapping), _pattern_of(function_name))
    else:
        mapping = found[0]
        _wait_mapping(lab, mapping["UUID"], "previous change")
        changes = {k: v for k, v in desired.items() if mapping.get(k) != v}
        if enabled != (mapping["State"] == "Enabled"):
            changes["Enabled"] = enabled
        if changes:
            client.update_event_source_mapping(UUID=mapping["UUID"], **changes)
            lab.ledger.record(
                MAPPING_KIND, _mapping_name(mapping), _pattern_of(function_name), "updated"
            )
    return _wait_mapping(lab, mapping["UUID"], "enabling" if enabled else "disabling")


def log_lines(lab: Lab, function_name: str, *, since: float, containing: str = "") -> list[str]:
    """The function's log lines written since `since` (epoch seconds) that contain a text."""
    client = lab.client("logs")
    lines: list[tuple[int, str]] = []
    try:
        pages = client.get_paginator("filter_log_events").paginate(
            logGroupName=logs.lambda_group(function_name), startTime=int(since * 1000)
        )
        for page in pages:
            lines += [(e["timestamp"], e["message"].rstrip("\n")) for e in page["events"]]
    except client.exceptions.ResourceNotFoundException:
        return []  # no invocation yet
    lines.sort(key=lambda line: line[0])  # stable: same-millisecond lines keep their order
    return [text for _, text in lines if containing in text]


def _wait_mapping(lab: Lab, uuid: str, what: str) -> dict[str, Any]:
    """The mapping once it is Enabled or Disabled (AWS takes up to a minute or two)."""
    client = lab.client("lambda")

    def settled() -> dict[str, Any] | None:
        mapping = client.get_event_source_mapping(UUID=uuid)
        return mapping if mapping["State"] in ("Enabled", "Disabled") else None

    return wait_for(settled, what=f"event source mapping: {what}", pace=lab.pace.mapping_settled)


def _mapping_name(mapping: dict[str, Any]) -> str:
    """`<function> <- <table>`: stable across runs, unlike the mapping's UUID."""
    function = mapping["FunctionArn"].split(":function:")[-1].split(":")[0]
    source = mapping["EventSourceArn"].split(":table/")[-1].split("/stream/")[0]
    return f"{function} <- {source}"


def _pattern_of(function_name: str) -> str:
    parts = naming.parse_name(function_name)
    return parts.pattern if parts else ""


def _find_mappings(lab: Lab) -> Iterable[cleanup.Resource]:
    """Mappings whose function is a course function (all runs)."""
    paginator = lab.client("lambda").get_paginator("list_event_source_mappings")
    for page in paginator.paginate():
        for mapping in page["EventSourceMappings"]:
            function = mapping["FunctionArn"].split(":function:")[-1].split(":")[0]
            parts = naming.parse_name(function)
            if parts is not None:
                yield cleanup.Resource(
                    MAPPING_KIND,
                    _mapping_name(mapping),
                    parts.pattern,
                    parts.run_id,
                    {"uuid": mapping["UUID"]},
                )


def _delete_mapping(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a mapping and wait until it is gone, so its function can go next."""
    client = lab.client("lambda")
    client.delete_event_source_mapping(UUID=resource.detail["uuid"])

    def gone() -> bool:
        try:
            client.get_event_source_mapping(UUID=resource.detail["uuid"])
        except client.exceptions.ResourceNotFoundException:
            return True
        return False

    wait_for(gone, what="event source mapping: deleting", pace=lab.pace.mapping_deleted)


# Deleted before the function (and the queue it reports failures to).
RESOURCE_KINDS = [cleanup.ResourceKind(MAPPING_KIND, _find_mappings, _delete_mapping)]
