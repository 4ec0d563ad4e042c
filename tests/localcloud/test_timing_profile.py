"""The AWS timing profile: each rule answers with AWS's error (or its delay), then lets go.

One private daemon for the module runs with LOCALCLOUD_TIMING=aws at scale 0.2, so IAM's
propagation delay is 2 s, metric ingestion 12 s and a new stage 2 s. Each test shows the
refusal right after the change and the success once the delay has passed; a normal run
(every other test module) shows the rules are off by default.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import LAMBDA_TRUST, unique, zip_files
from polling import wait_until

import helpers
from localcloud import daemon
from localcloud.timing import TimingProfile, timing_profile

ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def aws_lab() -> Iterator[helpers.Lab]:
    """A lab on a daemon of its own, under the AWS timing profile at scale 0.2."""
    state = Path(tempfile.mkdtemp(prefix="localcloud-timing-"))
    state.chmod(0o755)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOCALCLOUD_STATE_DIR", str(state))
        env.setenv("LOCALCLOUD_PORT", "0")
        env.setenv("LOCALCLOUD_TIMING", "aws")
        env.setenv("LOCALCLOUD_TIMING_SCALE", "0.2")
        info = daemon.up(quiet=True)
        assert info.timing == "aws x0.2"
        try:
            yield helpers.connect("local", run_id="timing", quiet=True)
        finally:
            daemon.down()
    shutil.rmtree(state, ignore_errors=True)


def _error(call: Any, **params: Any) -> dict[str, str]:
    """The AWS error a call answers (it must fail)."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def _role(lab: helpers.Lab, trust: dict[str, Any]) -> str:
    """A role created now; its ARN."""
    return lab.client("iam").create_role(
        RoleName=unique("timing"), AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]


def test_a_new_role_reaches_lambda_only_after_propagating(aws_lab):
    client = aws_lab.client("lambda")
    params = {
        "FunctionName": unique("timing"),
        "Runtime": "python3.12",
        "Role": _role(aws_lab, LAMBDA_TRUST),
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return 1\n"})},
    }
    error = _error(client.create_function, **params)
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == "The role defined for the function cannot be assumed by Lambda."

    def created() -> bool:
        try:
            client.create_function(**params)
        except ClientError as again:
            assert "cannot be assumed" in again.response["Error"]["Message"]
            return False
        return True

    wait_until(created, what="the role to reach Lambda", timeout=30, interval=0.5)


def test_ecs_creates_its_service_linked_role_on_a_first_failing_call(aws_lab):
    ecs, iam = aws_lab.client("ecs"), aws_lab.client("iam")
    error = _error(ecs.create_cluster, clusterName="timing")
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("Unable to assume the service linked role.")
    roles = iam.list_roles(PathPrefix="/aws-service-role/ecs.amazonaws.com/")["Roles"]
    assert [r["RoleName"] for r in roles] == ["AWSServiceRoleForECS"]
    cluster = wait_until(
        lambda: _succeeds(ecs.create_cluster, clusterName="timing"),
        what="CreateCluster to succeed once the role has propagated",
        timeout=30,
        interval=0.5,
    )
    assert cluster["cluster"]["status"] == "ACTIVE"

    definition = ecs.register_task_definition(
        family=unique("timing"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn=_role(aws_lab, ECS_TASKS_TRUST),
        containerDefinitions=[{"name": "app", "image": "busybox", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    subnet = aws_lab.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    error = _error(
        ecs.run_task,
        cluster="timing",
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("ECS was unable to assume the role 'arn:aws:iam::")


def _succeeds(call: Any, **params: Any) -> Any:
    """The call's answer, or None while it fails with AWS's propagation error."""
    try:
        return call(**params)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidParameterException"
        return None


def test_metric_data_become_readable_after_the_ingestion_delay(aws_lab):
    cloudwatch = aws_lab.client("cloudwatch")
    namespace = unique("Timing")
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 7}])
    now = dt.datetime.now(dt.UTC)

    def datapoints() -> list[dict[str, Any]]:
        return cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName="M",
            Statistics=["Sum"],
            Period=60,
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
        )["Datapoints"]

    assert datapoints() == []  # on AWS too: a metric read right after it was put is empty
    points = wait_until(datapoints, what="the datum to be readable", timeout=60, interval=1)
    assert [p["Sum"] for p in points] == [7]


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_new_stage_answers_404_until_it_is_deployed(aws_lab):
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        api = aws_lab.client("apigatewayv2").create_api(
            Name=unique("timing"),
            ProtocolType="HTTP",
            Target=f"http://127.0.0.1:{backend.server_port}/",
        )
        url = aws_lab.url_for(api)

        def status() -> int:
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    return answer.status
            except urllib.error.HTTPError as refused:
                return refused.code

        assert status() == 404
        wait_until(lambda: status() == 200, what="the stage to serve", timeout=30, interval=0.3)
    finally:
        backend.shutdown()


def test_the_profile_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("LOCALCLOUD_TIMING", raising=False)
    monkeypatch.delenv("LOCALCLOUD_TIMING_SCALE", raising=False)
    assert timing_profile() == TimingProfile("local", 0.2)
    assert timing_profile().delay(10) == 0
    monkeypatch.setenv("LOCALCLOUD_TIMING", "aws")
    monkeypatch.setenv("LOCALCLOUD_TIMING_SCALE", "0.5")
    assert timing_profile().delay(10) == 5
    for name, value, field in (
        ("LOCALCLOUD_TIMING_SCALE", "0", "LOCALCLOUD_TIMING_SCALE"),
        ("LOCALCLOUD_TIMING_SCALE", "fast", "LOCALCLOUD_TIMING_SCALE"),
        ("LOCALCLOUD_TIMING", "azure", "LOCALCLOUD_TIMING"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=field):
            timing_profile()
        monkeypatch.setenv("LOCALCLOUD_TIMING", "aws")
        monkeypatch.setenv("LOCALCLOUD_TIMING_SCALE", "0.5")
