"""SQS queues for the course (on-failure destinations): get-or-create with tags, read, teardown."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import cleanup, naming
from .costs import Price
from .lab import Lab

KIND = "sqs queue"


@dataclass(frozen=True)
class Queue:
    """A queue's URL (for the SQS API) and ARN (for policies and destinations)."""

    url: str
    arn: str


def ensure_queue(lab: Lab, pattern: str, name: str) -> Queue:
    """Return the queue, creating it (tagged) if missing."""
    queue_name = lab.name(pattern, name, max_length=80)
    client = lab.client("sqs")
    try:
        url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except client.exceptions.QueueDoesNotExist:
        url = client.create_queue(QueueName=queue_name, tags=lab.tags(pattern))["QueueUrl"]
        lab.ledger.record(KIND, queue_name, pattern)
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Queue(url, arn)


def receive_json(lab: Lab, queue: Queue, *, wait_s: int = 1, delete: bool = True) -> list[Any]:
    """Every message waiting on the queue, bodies parsed as JSON, oldest first."""
    client, found = lab.client("sqs"), []
    while True:
        got = client.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
        )
        messages = got.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            if delete:
                client.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])


def purge(lab: Lab, queue: Queue) -> None:
    """Drop whatever the queue holds (a re-run starts from an empty queue)."""
    receive_json(lab, queue, wait_s=0)


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course queue (all runs); names say run and pattern."""
    prefix = naming.run_prefix()
    for page in lab.client("sqs").get_paginator("list_queues").paginate(QueueNamePrefix=prefix):
        for url in page.get("QueueUrls", []):
            parts = naming.parse_name(url.rsplit("/", 1)[-1])  # .../<account>/<name>
            if parts is not None:
                name = url.rsplit("/", 1)[-1]
                yield cleanup.Resource(KIND, name, parts.pattern, parts.run_id, {"url": url})


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a queue by its URL (its name is what reports show)."""
    lab.client("sqs").delete_queue(QueueUrl=resource.detail["url"])


# An event source mapping sends its failure records here: it goes first.
RESOURCE_KINDS = [cleanup.ResourceKind(KIND, _find, _delete, after=("event source mapping",))]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "sqs_million_requests": Price(0.40, "1M requests", "standard queues; free tier: 1M/month"),
}
