"""A daemon killed with SIGKILL leaves no process behind, and deleted functions stop running.

Each test runs a private daemon (its own state directory, port and a long Lambda idle time,
so the idle reaper cannot hide a worker that outlives its function). What is "a process of
the old daemon" is found from outside, as a student would look: every process whose command
line, environment or working directory lies in that state directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from live_fixtures import LAMBDA_TRUST, zip_files
from polling import wait_until

import helpers
from localcloud import daemon

SLEEPER = 'FROM python:3.12-slim\nCMD ["python", "-c", "import time; time.sleep(600)"]\n'
PRINTER = "def handler(event, context):\n    print('hello')\n    return 1\n"


@pytest.fixture
def private_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory and settings of its own; whatever runs there is stopped at the end."""
    state = Path(tempfile.mkdtemp(prefix="localcloud-crash-"))
    state.chmod(0o755)  # as root, the engines' servers run as other users
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(state))
    monkeypatch.setenv("LOCALCLOUD_PORT", "0")
    monkeypatch.setenv("LOCALCLOUD_LAMBDA_IDLE_SECONDS", "300")
    yield state
    daemon.down()
    shutil.rmtree(state, ignore_errors=True)


def _processes_in(state: Path) -> dict[int, str]:
    """Live processes (not zombies) that work in, run from or were told about `state`."""
    mark, found = str(state).encode(), {}
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        proc = Path(f"/proc/{process.pid}")
        try:
            seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            seen += os.readlink(proc / "cwd").encode()
            if mark in seen and process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = " ".join(process.cmdline())
        except (OSError, psutil.Error):
            continue
    return found


def _start_task_and_engine(lab: helpers.Lab, state: Path) -> dict[int, str]:
    """A Fargate task that sleeps and an Aurora cluster's MariaDB; their processes by pid."""
    ecs, ec2, rds = lab.client("ecs"), lab.client("ec2"), lab.client("rds")
    repository = lab.client("ecr").create_repository(repositoryName="sleeper")["repository"]
    context = Path(tempfile.mkdtemp(dir=state))
    (context / "Dockerfile").write_text(SLEEPER)
    image = helpers.images.build_and_push(lab, repository, context, "v1").image_uri
    ecs.create_cluster(clusterName="crash")
    definition = ecs.register_task_definition(
        family="sleeper",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": image, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    task = ecs.run_task(
        cluster="crash",
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )["tasks"][0]["taskArn"]
    rds.create_db_cluster(
        DBClusterIdentifier="crash",
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 2},
    )
    rds.create_db_instance(
        DBInstanceIdentifier="crash-w1",
        DBClusterIdentifier="crash",
        Engine="aurora-mysql",
        DBInstanceClass="db.serverless",
    )
    wait_until(
        lambda: (
            ecs.describe_tasks(cluster="crash", tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"
        ),
        what="the sleeper task to run",
    )
    engines = wait_until(
        lambda: [e for e in daemon.status()["engines"] if e["running"]], what="MariaDB to run"
    )
    found = _processes_in(state)
    task_pids = [pid for pid, line in found.items() if "time.sleep(600)" in line]
    assert len(task_pids) == 1 and engines[0]["pid"] in found, found
    return {task_pids[0]: "task", engines[0]["pid"]: "engine"}


def _kill_daemon() -> None:
    """SIGKILL the daemon, as a crash or the OOM killer would."""
    info = daemon.DaemonInfo.read()
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(info.pid) or _zombie(info.pid), what="the kill")


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_up_and_down_after_kill_9_leave_no_process_of_the_old_daemon(private_state: Path):
    orphans = _start_task_and_engine(
        helpers.connect("local", run_id="crash", quiet=True), private_state
    )
    _kill_daemon()
    assert set(orphans) <= set(_processes_in(private_state))  # the crash alone ends neither

    info = daemon.up(quiet=True)
    left = set(_processes_in(private_state)) - {info.pid}
    assert left == set(), {pid: orphans.get(pid) for pid in left}
    assert daemon.status()["engines"] == []  # no engine without its cluster is adopted
    assert list((private_state / "engines").iterdir()) == []  # and its data is gone

    orphans = _start_task_and_engine(
        helpers.connect("local", run_id="crash", quiet=True), private_state
    )
    _kill_daemon()
    stopped = daemon.down()
    assert _processes_in(private_state) == {}
    assert {f"engine pid {pid}" for pid, kind in orphans.items() if kind == "engine"} <= set(
        stopped
    )


def test_a_deleted_functions_workers_end_and_status_stops_counting_it(private_state: Path):
    lab = helpers.connect("local", run_id="crash", quiet=True)
    role = lab.client("iam").create_role(
        RoleName="crash-lambda", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    client = lab.client("lambda")
    client.create_function(
        FunctionName="printer",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": PRINTER})},
    )
    assert client.invoke(FunctionName="printer")["Payload"].read() == b"1"
    workers = [p for p, line in _processes_in(private_state).items() if "awslambdaric" in line]
    assert len(workers) == 1 and daemon.status()["providers"]["lambda"]["functions"] == 1

    client.delete_function(FunctionName="printer")
    wait_until(lambda: workers[0] not in _processes_in(private_state), what="the worker to end")
    wait_until(
        lambda: daemon.status()["providers"]["lambda"]["functions"] == 0,
        what="status to stop counting the deleted function",
    )
