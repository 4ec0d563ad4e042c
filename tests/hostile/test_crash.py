"""A daemon killed with SIGKILL leaves no process behind, and deleted functions stop running.

The crash comes while an ECS service runs its task, a Lambda storm keeps workers busy and a
Data API transaction is open: after `up` (and after `down`) no process of the old daemon is
left, and the built image, which docs/architecture.md says survives, is still there.

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
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class Storm:
    """Callers invoking a printing function without pause until stopped (or the daemon dies)."""

    def __init__(self, lab: helpers.Lab, function: str, callers: int = 4) -> None:
        self.invokes, self._stop = 0, threading.Event()
        clients = [
            lab.session.client("lambda", endpoint_url=lab.endpoint_url) for _ in range(callers)
        ]
        self._threads = [
            threading.Thread(target=self._call, args=(client, function), daemon=True)
            for client in clients
        ]
        for thread in self._threads:
            thread.start()

    def _call(self, client: Any, function: str) -> None:
        while not self._stop.is_set():
            try:
                client.invoke(FunctionName=function)["Payload"].read()
                self.invokes += 1
            except Exception:  # the daemon was killed under it: that is the point
                return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _start_everything(lab: helpers.Lab, state: Path) -> tuple[dict[int, str], Storm, str]:
    """An ECS service, an open Data API transaction and a Lambda storm, all running.

    Returns their processes by pid (task, engine, worker), the storm, and the image's digest.
    """
    ecs, ec2, rds = lab.client("ecs"), lab.client("ec2"), lab.client("rds")
    repository = lab.client("ecr").create_repository(repositoryName="sleeper")["repository"]
    context = Path(tempfile.mkdtemp(dir=state))
    (context / "Dockerfile").write_text(SLEEPER)
    image = helpers.images.build_and_push(lab, repository, context, "v1")
    ecs.create_cluster(clusterName="crash")
    definition = ecs.register_task_definition(
        family="sleeper",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": image.image_uri, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ecs.create_service(
        cluster="crash",
        serviceName="sleepers",
        taskDefinition=definition,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="crash",
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        DatabaseName="labdb",
        EnableHttpEndpoint=True,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 2},
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier="crash-w1",
        DBClusterIdentifier="crash",
        Engine="aurora-mysql",
        DBInstanceClass="db.serverless",
    )
    data = lab.client("rds-data")
    target = {
        "resourceArn": cluster["DBClusterArn"],
        "secretArn": cluster["MasterUserSecret"]["SecretArn"],
        "database": "labdb",
    }
    wait_until(
        lambda: (
            rds.describe_db_clusters(DBClusterIdentifier="crash")["DBClusters"][0]["Status"]
            == "available"
        ),
        what="the cluster to be available",
        timeout=120,
    )
    data.execute_statement(sql="CREATE TABLE notes (id INT PRIMARY KEY)", **target)
    transaction = data.begin_transaction(**target)["transactionId"]
    data.execute_statement(
        sql="INSERT INTO notes VALUES (1)", transactionId=transaction, **target
    )  # left open: the crash comes before the commit
    _create_printer(lab, "storm")
    storm = Storm(lab, "storm")
    wait_until(lambda: storm.invokes >= 20, what="the storm to be under way")

    task = wait_until(
        lambda: [
            t
            for t in ecs.describe_tasks(
                cluster="crash", tasks=ecs.list_tasks(cluster="crash")["taskArns"] or ["none"]
            )["tasks"]
            if t["lastStatus"] == "RUNNING"
        ],
        what="the service's task to run",
    )
    assert task
    engines = [e for e in daemon.status()["engines"] if e["running"]]
    found = _processes_in(state)
    kinds = {pid: "task" for pid, line in found.items() if "time.sleep(600)" in line}
    kinds |= {pid: "worker" for pid, line in found.items() if "awslambdaric" in line}
    assert sorted(kinds.values()).count("task") == 1 and "worker" in kinds.values(), found
    assert len(engines) == 1 and engines[0]["pid"] in found, (engines, found)
    kinds[engines[0]["pid"]] = "engine"
    return kinds, storm, image.digest


def _recorded(state: Path, kind: str) -> set[int]:
    """The pids of the processes of this kind the daemon recorded (`localcloud/orphans.py`)."""
    entries = [json.loads(p.read_text()) for p in (state / "processes").glob("*.json")]
    return {entry["pid"] for entry in entries if entry["kind"] == kind}


def _create_printer(lab: helpers.Lab, name: str) -> None:
    """A zip function that prints a line per invoke."""
    role = lab.client("iam").create_role(
        RoleName=f"crash-{name}", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    lab.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": PRINTER})},
    )


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


@pytest.mark.long
def test_up_and_down_after_kill_9_leave_no_process_of_the_old_daemon(private_state: Path):
    lab = helpers.connect("local", run_id="crash", quiet=True)
    orphans, storm, digest = _start_everything(lab, private_state)
    _kill_daemon()  # with the service's task, the storm's workers and the transaction live
    storm.stop()
    # The task and the engine outlive the crash (workers end with their runtime API's socket).
    outliving = {pid for pid, kind in orphans.items() if kind in ("task", "engine")}
    assert outliving <= set(_processes_in(private_state))

    info = daemon.up(quiet=True)
    left = set(_processes_in(private_state)) - {info.pid}
    assert left == set(), {pid: orphans.get(pid) for pid in left}
    assert daemon.status()["engines"] == []  # no engine without its cluster is adopted
    assert list((private_state / "engines").iterdir()) == []  # and its data is gone
    # What the design keeps: built images, so the same build is reused, not redone.
    assert (private_state / "images" / digest.removeprefix("sha256:")).is_dir()

    lab = helpers.connect("local", run_id="crash", quiet=True)
    orphans, storm, again = _start_everything(lab, private_state)
    assert again == digest
    _kill_daemon()
    storm.stop()
    stopped = daemon.down()
    assert _processes_in(private_state) == {}
    assert {f"engine pid {pid}" for pid, kind in orphans.items() if kind == "engine"} <= set(
        stopped
    )


def test_a_deleted_functions_workers_end_and_status_stops_counting_it(private_state: Path):
    lab = helpers.connect("local", run_id="crash", quiet=True)
    _create_printer(lab, "printer")
    client = lab.client("lambda")
    assert client.invoke(FunctionName="printer")["Payload"].read() == b"1"
    # The environment, not the fork server it came from (both run the runtime's command line).
    workers = [
        p for p in _processes_in(private_state) if p in _recorded(private_state, "lambda worker")
    ]
    assert len(workers) == 1 and daemon.status()["providers"]["lambda"]["functions"] == 1

    client.delete_function(FunctionName="printer")
    wait_until(lambda: workers[0] not in _processes_in(private_state), what="the worker to end")
    wait_until(
        lambda: daemon.status()["providers"]["lambda"]["functions"] == 0,
        what="status to stop counting the deleted function",
    )
