"""What a restart does to a DynamoDB stream mapping: nothing of it survives, nothing is left over.

Streams and mappings live in the daemon's memory, as every other resource of the local cloud
(docs/architecture.md, "What survives a restart"). A daemon restarted with a mapping in
place comes back empty: no table, no stream, no mapping, no worker of the old function; the
same setup made again delivers again.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
from live_fixtures import LAMBDA_TRUST, zip_files
from polling import wait_until

import helpers
from localcloud import daemon

SENDER = textwrap.dedent(
    """
    import json, os
    import boto3

    def handler(event, context):
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        boto3.client("sqs").send_message(QueueUrl=os.environ["SINK"], MessageBody=json.dumps(keys))
    """
)


def _setup_and_deliver(lab: helpers.Lab, key: str) -> None:
    """Table, stream, function, mapping; one write delivered to the sink queue."""
    ddb, lam, sqs = lab.client("dynamodb"), lab.client("lambda"), lab.client("sqs")
    role = lab.client("iam").create_role(
        RoleName="restart-role", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    sink = sqs.create_queue(QueueName="restart-sink")["QueueUrl"]
    lam.create_function(
        FunctionName="restart-fn",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": SENDER})},
        Environment={"Variables": {"SINK": sink}},
    )
    stream = ddb.create_table(
        TableName="restart-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )["TableDescription"]["LatestStreamArn"]
    mapping = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName="restart-fn", StartingPosition="LATEST"
    )["UUID"]
    wait_until(
        lambda: lam.get_event_source_mapping(UUID=mapping)["State"] == "Enabled",
        what="mapping enabled",
    )
    ddb.put_item(TableName="restart-table", Item={"pk": {"S": key}})

    def delivered() -> list[str]:
        got = sqs.receive_message(QueueUrl=sink, MaxNumberOfMessages=10)
        return [k for m in got.get("Messages", []) for k in json.loads(m["Body"])]

    assert wait_until(delivered, what=f"{key} delivered") == [key]


def _workers(state: Path) -> list[psutil.Process]:
    """Lambda worker processes running code extracted under this state directory."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "awslambdaric" in (process.info["cmdline"] or []) and str(state) in (
                process.info["cwd"] or ""
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_restarted_daemon_keeps_no_mapping_and_leaves_no_worker(tmp_path, monkeypatch):
    tmp_path.chmod(0o755)
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOCALCLOUD_PORT", "0")
    first = daemon.up(quiet=True)
    try:
        lab = helpers.connect("local", run_id="restart", quiet=True)
        _setup_and_deliver(lab, "before")
        assert _workers(tmp_path)  # the mapping's invocations started a worker
        monkeypatch.setattr(daemon, "code_version", lambda: "a-newer-checkout")
        second = daemon.up(quiet=True)  # a restart with the mapping in place
        assert second.pid != first.pid and not psutil.pid_exists(first.pid)
        lab = helpers.connect("local", run_id="restart", quiet=True)
        assert lab.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
        assert lab.client("dynamodb").list_tables()["TableNames"] == []
        assert lab.client("dynamodbstreams").list_streams()["Streams"] == []
        assert _workers(tmp_path) == []  # the old worker went with its daemon
        _setup_and_deliver(lab, "after")  # the same setup works again
    finally:
        daemon.down()
