"""Log retention is bounded: each stream the logs writer fills keeps its latest events only."""

from __future__ import annotations

import gc
import uuid
import weakref

from localcloud.config import DEFAULT_REGION, FAKE_ACCOUNT_ID
from localcloud.motogateway import LogsWriter, MotoGateway


def _messages(gateway: MotoGateway, group: str, stream: str) -> list[str]:
    """The stream's events as GetLogEvents returns them to a reader, oldest first."""
    answer = gateway.call(
        "logs",
        "GetLogEvents",
        {"logGroupName": group, "logStreamName": stream, "startFromHead": True},
        DEFAULT_REGION,
    )
    return [event["message"] for event in answer["events"]]


def test_each_stream_keeps_its_latest_events_and_drops_the_oldest():
    gateway = MotoGateway()
    writer = LogsWriter(gateway.backend, max_events=5)
    group = f"/aws/lambda/retention-{uuid.uuid4().hex[:6]}"
    for batch in range(3):  # Lambda's path: written at once, four lines per invoke
        lines = [f"invoke {batch} line {n}" for n in range(4)]
        writer.write(FAKE_ACCOUNT_ID, DEFAULT_REGION, group, "worker", lines)
        if batch == 0:
            with gateway.backend("logs", FAKE_ACCOUNT_ID, DEFAULT_REGION) as logs:
                first = weakref.ref(logs.groups[group].streams["worker"].events[0])
    for n in range(7):  # ECS's path: queued line by line, then flushed
        writer.add((FAKE_ACCOUNT_ID, DEFAULT_REGION, group, "task"), f"task line {n}")
    writer.flush()

    assert _messages(gateway, group, "worker") == [
        "invoke 1 line 3",
        *(f"invoke 2 line {n}" for n in range(4)),
    ]
    assert _messages(gateway, group, "task") == [f"task line {n}" for n in range(2, 7)]
    gc.collect()
    assert first() is None  # a dropped event is freed, not kept alive elsewhere in moto
