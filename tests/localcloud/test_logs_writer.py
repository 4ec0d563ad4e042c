"""Lambda's log lines are queued and written in one batch per stream, in time order."""

from __future__ import annotations

import uuid

from localcloud.config import DEFAULT_REGION, FAKE_ACCOUNT_ID
from localcloud.motogateway import LogsWriter, MotoGateway
from localcloud.motogateway import logs as logs_module


def test_queued_lines_create_their_group_and_are_written_in_time_order(monkeypatch):
    gateway = MotoGateway()
    writer = LogsWriter(gateway.backend)
    group = f"/aws/lambda/queued-{uuid.uuid4().hex[:6]}"
    key = (FAKE_ACCOUNT_ID, DEFAULT_REGION, group, "worker")
    # Two invocations whose lines were queued out of order (one thread was slower to queue):
    # PutLogEvents refuses a batch that is not in time order, so the writer sorts it.
    now = logs_module.time.time()
    monkeypatch.setattr(logs_module.time, "time", lambda: now)
    writer.add_many(key, ["START second", "END second"])
    monkeypatch.setattr(logs_module.time, "time", lambda: now - 1)
    writer.add_many(key, ["START first", "END first"])
    monkeypatch.undo()
    writer.flush()

    answer = gateway.call(
        "logs",
        "GetLogEvents",
        {"logGroupName": group, "logStreamName": "worker", "startFromHead": True},
        DEFAULT_REGION,
    )
    assert [e["message"] for e in answer["events"]] == [
        "START first",
        "END first",
        "START second",
        "END second",
    ]
