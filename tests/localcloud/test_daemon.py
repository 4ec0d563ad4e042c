"""The local cloud daemon end to end: boto3 with only AWS_ENDPOINT_URL, CLI, reset, up and down."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from polling import wait_until

import helpers
from localcloud import daemon

ROUNDTRIP = textwrap.dedent(
    """
    import datetime as dt, json
    import boto3

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="roundtrip", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    ddb.put_item(TableName="roundtrip", Item={"id": {"S": "a"}, "n": {"N": "7"}})
    item = ddb.get_item(TableName="roundtrip", Key={"id": {"S": "a"}})["Item"]

    cw = boto3.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    dims = [{"Name": "Service", "Value": "orders"}]
    for namespace, values in (("Course/A", list(range(1, 101))), ("Course/B", [1000.0] * 10)):
        cw.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": "Latency", "Dimensions": dims, "Values": [float(v) for v in values],
            "Unit": "Milliseconds", "Timestamp": now}])
    result = {}
    for namespace in ("Course/A", "Course/B"):
        window = dict(Namespace=namespace, MetricName="Latency", Dimensions=dims, Period=60,
                      StartTime=now - dt.timedelta(minutes=5),
                      EndTime=now + dt.timedelta(minutes=5))
        # AWS takes Statistics or ExtendedStatistics in one call, never both.
        point = cw.get_metric_statistics(**window, Statistics=["SampleCount", "Maximum"])
        point = point["Datapoints"][0]
        extended = cw.get_metric_statistics(**window, ExtendedStatistics=["p50", "p99"])
        extended = extended["Datapoints"][0]["ExtendedStatistics"]
        data = cw.get_metric_data(
            StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=5),
            MetricDataQueries=[{"Id": "p99", "MetricStat": {"Metric": {
                "Namespace": namespace, "MetricName": "Latency", "Dimensions": dims},
                "Period": 60, "Stat": "p99"}}])
        result[namespace] = {"count": point["SampleCount"], "max": point["Maximum"],
                             "p50": extended["p50"], "p99": extended["p99"],
                             "p99_data": data["MetricDataResults"][0]["Values"]}
    print(json.dumps({"item": item, "metrics": result}))
    """
)


def _env_for(cloud: daemon.DaemonInfo) -> dict[str, str]:
    """A child environment that knows the local cloud only through AWS_ENDPOINT_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=cloud.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def test_plain_boto3_with_only_the_endpoint_variable(cloud):
    done = subprocess.run(
        [sys.executable, "-c", ROUNDTRIP],
        env=_env_for(cloud),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["item"] == {"id": {"S": "a"}, "n": {"N": "7"}}
    a, b = result["metrics"]["Course/A"], result["metrics"]["Course/B"]
    # Same metric name and dimensions in two namespaces: read back separately.
    assert (a["count"], a["max"]) == (100, 100)
    assert (b["count"], b["max"]) == (10, 1000)
    assert (a["p50"], a["p99"]) == (50, 99)
    assert a["p99_data"] == [99] and b["p99_data"] == [1000]


def test_cli_status_env_and_json(cloud):
    env = {**os.environ}
    status = subprocess.run(
        [sys.executable, "-m", "localcloud", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["running"] and state["endpoint"] == cloud.endpoint
    assert "cloudwatch" in state["providers"]
    assert isinstance(state["engines"], list) and isinstance(state["resources"], list)
    exports = subprocess.run(
        [sys.executable, "-m", "localcloud", "env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f"export AWS_ENDPOINT_URL={cloud.endpoint}" in exports
    assert "export AWS_ACCESS_KEY_ID=test" in exports


def test_status_lists_tagged_resources_until_they_are_gone(cloud):
    """From the emulator's own state: tags, not course code; a deleted ECS cluster is not left."""
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test")
    ecs = session.client("ecs", region_name="us-east-1", endpoint_url=cloud.endpoint)
    iam = session.client("iam", region_name="us-east-1", endpoint_url=cloud.endpoint)
    ecs.create_cluster(clusterName="inventory-c", tags=[{"key": "run_id", "value": "inv"}])
    ecs.create_cluster(clusterName="inventory-untagged")
    iam.create_role(
        RoleName="inventory-r", AssumeRolePolicyDocument="{}", Tags=[{"Key": "k", "Value": "v"}]
    )

    def listed() -> dict[str, str]:
        state = daemon.status()
        return {row["name"]: f"{row['kind']} {row['tags']}" for row in state["resources"]}

    try:
        found = listed()
        assert found["inventory-c"] == "ecs:cluster run_id=inv"
        assert found["inventory-r"] == "iam:role k=v"
        assert "inventory-untagged" not in found
        ecs.delete_cluster(cluster="inventory-c")
        assert "inventory-c" not in listed()
    finally:
        iam.delete_role(RoleName="inventory-r")
        ecs.delete_cluster(cluster="inventory-untagged")
    assert "inventory-r" not in listed()


def test_reset_wipes_state(lab):
    client = lab.client("dynamodb")
    helpers.dynamodb.ensure_table(lab, "00", "doomed")
    daemon.call(daemon.running(), "reset", method="POST")
    assert client.list_tables()["TableNames"] == []


def test_down_stops_the_daemon_and_leaves_no_process(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOCALCLOUD_PORT", "0")
    gc.disable()  # down() must reap the daemon, not the garbage collection of up()'s Popen
    try:
        info = daemon.up(quiet=True)
        assert daemon.running() == info
        assert info.endpoint.startswith("http://127.0.0.1:")
        stopped = daemon.down()
    finally:
        gc.enable()
    assert stopped == [f"daemon pid {info.pid}"]
    assert not psutil.pid_exists(info.pid)  # not even a zombie of this process
    assert daemon.running() is None
    ours = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and str(tmp_path).encode() in _cmdline_and_env(p)
    ]
    assert ours == []
    assert daemon.down() == []  # a second down is harmless


MAIN_THREAD_EXITS_FIRST = textwrap.dedent(
    """
    import ctypes, os, threading, time
    threading.Thread(target=lambda: (time.sleep(0.5), os._exit(0))).start()
    ctypes.CDLL(None).pthread_exit(None)
    """
)


def test_down_reaps_a_daemon_whose_main_thread_exits_before_its_other_threads():
    child = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_EXITS_FIRST])
    stat = Path(f"/proc/{child.pid}/stat")
    wait_until(lambda: stat.read_text().split(") ")[-1][:1] == "Z", what="main thread exited")
    assert psutil.Process(child.pid).num_threads() >= 1  # the process has not exited yet
    daemon._reap(child.pid)
    assert not psutil.pid_exists(child.pid)  # reaped, once the last thread was gone


def _cmdline_and_env(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
    except OSError:
        return b""


def test_concurrent_requests_through_the_edge(lab):
    """Eight threads writing items and metrics at once: nothing lost, nothing mixed."""
    table = helpers.dynamodb.ensure_table(lab, "00", "concurrent")["TableName"]
    threads, per_thread = 8, 25

    def worker(n: int) -> None:
        client = lab.session.client("dynamodb", endpoint_url=lab.endpoint_url)
        cloudwatch = lab.session.client("cloudwatch", endpoint_url=lab.endpoint_url)
        for i in range(per_thread):
            client.put_item(TableName=table, Item={"id": {"S": f"{n}-{i}"}})
            cloudwatch.put_metric_data(
                Namespace="Course/Concurrency",
                MetricData=[
                    {
                        "MetricName": "Writes",
                        "Value": 1.0,
                        "Dimensions": [{"Name": "Thread", "Value": str(n % 2)}],
                    }
                ],
            )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    assert lab.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"] == 200
    now = dt.datetime.now(dt.UTC)
    for thread_group in ("0", "1"):
        points = lab.client("cloudwatch").get_metric_statistics(
            Namespace="Course/Concurrency",
            MetricName="Writes",
            Period=3600,
            Dimensions=[{"Name": "Thread", "Value": thread_group}],
            Statistics=["Sum"],
            StartTime=now - dt.timedelta(hours=1),
            EndTime=now + dt.timedelta(hours=1),
        )["Datapoints"]
        assert sum(p["Sum"] for p in points) == threads // 2 * per_thread
    helpers.cleanup.teardown(lab, pattern="00", quiet=True)


def test_down_kills_workers_a_crashed_daemon_left_behind(tmp_path: Path, monkeypatch):
    """A runtime working inside the state directory is ours: down ends it, nothing else."""
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    workdir = tmp_path / "lambda" / "code" / "abc"
    workdir.mkdir(parents=True)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen([*sleeper, "awslambdaric"], cwd=workdir)
    elsewhere = subprocess.Popen([*sleeper, "awslambdaric"], cwd=tmp_path.parent)
    shell_in_state = subprocess.Popen(sleeper, cwd=workdir)  # e.g. a student's terminal
    try:
        assert f"worker pid {ours.pid}" in daemon.down()
        assert ours.wait(timeout=5) == -9
        assert elsewhere.poll() is None and shell_in_state.poll() is None
    finally:
        for process in (ours, elsewhere, shell_in_state):
            process.kill()


def test_up_restarts_a_daemon_running_older_code(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOCALCLOUD_PORT", "0")
    first = daemon.up(quiet=True)
    try:
        assert daemon.up(quiet=True) == first  # same code: the running daemon is reused
        monkeypatch.setattr(daemon, "code_version", lambda: "a-newer-checkout")
        second = daemon.up(quiet=True)
        assert second.pid != first.pid
        assert "its code changed since it started" in capsys.readouterr().out
    finally:
        daemon.down()
