"""Execution environments forked from a per-image fork server ("zygote"), on a live local cloud.

The zygote imports the runtime and the handler's third-party packages once; each
environment is a fork that still runs the handler module's own code (its INIT), in its own
session, and a new image or new code gets a new zygote. See localcloud/lambda_/forkserver.py.
"""

from __future__ import annotations

import json
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psutil
from live_fixtures import LAMBDA_TRUST, ImageFactory, ZipFunctions, zip_files
from polling import wait_until

import helpers
from helpers import images
from localcloud import daemon

DOCKERFILE = textwrap.dedent(
    """\
    FROM public.ecr.aws/lambda/python:3.12
    COPY requirements.txt ${LAMBDA_TASK_ROOT}/
    RUN pip install --no-cache-dir -r requirements.txt
    COPY shared.py app.py ${LAMBDA_TASK_ROOT}/
    CMD ["app.handler"]
    """
)
SHARED = 'print("shared module init")\nGREETING = "hello"\n'
APP = textwrap.dedent(
    """\
    import os, sys, time
    # Before this module's own imports: what the environment already had.
    PRELOADED = sorted(n for n in ("boto3", "pymysql", "shared") if n in sys.modules)
    import boto3
    import pymysql
    import shared

    print(f"handler module init in {os.getpid()}")
    VERSION = 1

    def handler(event, context):
        time.sleep(event.get("seconds", 0))
        return {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
                "preloaded": PRELOADED, "version": VERSION,
                "stream": context.log_stream_name, "greeting": shared.GREETING}
    """
)
FILES = {"Dockerfile": DOCKERFILE, "requirements.txt": "pymysql\n", "shared.py": SHARED}
ZIP_HANDLERS = textwrap.dedent(
    """\
    import os, signal, subprocess, sys, time

    def whoami(event, context):
        return {"pid": os.getpid(), "ppid": os.getppid()}

    def spawn(event, context):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open(event["pidfile"], "w") as out:
            out.write(str(child.pid))
        time.sleep(30)

    def killed(event, context):
        os.kill(os.getpid(), signal.SIGKILL)

    def exits(event, context):
        os._exit(3)
    """
)


def _invoke(client: Any, name: str, payload: dict | None = None) -> tuple[dict, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}))
    return response, json.loads(response["Payload"].read())


def _is_zygote(pid: int) -> bool:
    return any(part.endswith("zygote.py") for part in psutil.Process(pid).cmdline())


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stream_messages(lab: helpers.Lab, name: str, stream: str) -> list[str]:
    events = lab.client("logs").filter_log_events(
        logGroupName=f"/aws/lambda/{name}", logStreamNames=[stream]
    )["events"]
    return [e["message"] for e in events]


def test_environments_are_forks_that_each_run_the_handler_init_and_a_new_image_a_new_zygote(
    cloud: daemon.DaemonInfo,
    lab: helpers.Lab,
    build_image: ImageFactory,
    lambda_role: str,
    tmp_path: Path,
):
    pushed = build_image({**FILES, "app.py": APP})
    client = lab.client("lambda")
    name = f"pytest-zygote-{time.time_ns() % 10**6}"
    client.create_function(
        FunctionName=name,
        Role=lambda_role,
        PackageType="Image",
        Code={"ImageUri": pushed.built.image_uri},
        Timeout=10,
    )
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: _invoke(client, name, {"seconds": 1})[1], range(2)))
        first, second = results
        assert first["pid"] != second["pid"]  # two execution environments
        assert first["ppid"] == second["ppid"] != cloud.pid  # forked by one zygote
        zygote = first["ppid"]
        assert _is_zygote(zygote)
        for result in results:
            assert result["pgid"] == result["pid"]  # its own session: timeouts kill its group
            # The zygote imported the third-party packages, never the function's own modules,
            assert result["preloaded"] == ["boto3", "pymysql"]
            # and the handler module's code ran once in each environment, logged as its init.
            assert result["greeting"] == "hello"
            messages = _stream_messages(lab, name, result["stream"])
            assert f"handler module init in {result['pid']}" in messages
            assert "shared module init" in messages
            # Idle, it waits for the next invocation on its one thread (no thread per poll).
            wait_until(
                lambda pid=result["pid"]: psutil.Process(pid).num_threads() == 1,
                what="an idle environment with one thread",
            )

        # A new image pushed as the same tag: a new digest, served by a new zygote.
        context = tmp_path / "v2"
        context.mkdir()
        for file_name, text in {
            **FILES,
            "app.py": APP.replace("VERSION = 1", "VERSION = 2"),
        }.items():
            (context / file_name).write_text(text)
        newer = images.build_and_push(lab, pushed.repository, context)
        assert newer.digest != pushed.built.digest
        client.update_function_code(FunctionName=name, ImageUri=newer.image_uri)
        client.get_waiter("function_updated_v2").wait(FunctionName=name)
        _, updated = _invoke(client, name)
        assert updated["version"] == 2 and updated["preloaded"] == ["boto3", "pymysql"]
        assert updated["ppid"] != zygote and _is_zygote(updated["ppid"])
        assert any(
            newer.digest.split(":")[1] in part for part in psutil.Process(updated["ppid"]).cmdline()
        )
    finally:
        client.delete_function(FunctionName=name)


def test_a_timeout_kills_what_the_handler_started_and_exits_are_reported(
    module_lab: helpers.Lab, zip_functions: ZipFunctions, tmp_path: Path
):
    client = module_lab.client("lambda")

    def create(handler: str, timeout: int = 3) -> str:
        files = {"handlers.py": ZIP_HANDLERS}
        return zip_functions.create(files, f"handlers.{handler}", Timeout=timeout)["FunctionName"]

    name = create("whoami")
    _, whoami = _invoke(client, name)
    assert _is_zygote(whoami["ppid"])  # zip functions are forked too
    # A zygote that dies: its environment keeps serving, the next cold start gets a new one.
    psutil.Process(whoami["ppid"]).kill()
    wait_until(lambda: not _running(whoami["ppid"]), what="the zygote gone")
    assert _invoke(client, name)[1]["pid"] == whoami["pid"]
    _, other = _invoke(client, create("whoami"))
    assert other["ppid"] != whoami["ppid"] and _is_zygote(other["ppid"])

    pidfile = tmp_path / "child.pid"
    response, error = _invoke(client, create("spawn", timeout=1), {"pidfile": str(pidfile)})
    assert error["errorType"] == "Sandbox.Timedout", error
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not _running(grandchild), what="the handler's own child killed")

    for handler, detail in (("killed", "signal: killed"), ("exits", "exit status 3")):
        response, error = _invoke(client, create(handler))
        request_id = response["ResponseMetadata"]["RequestId"]
        assert error == {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {detail}",
        }


def test_down_and_a_crash_leave_no_zygote_or_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOCALCLOUD_PORT", "0")
    for ending in ("down", "crash"):
        info = daemon.up(quiet=True)
        try:
            pids = _two_environments(info.endpoint)
            assert all(_running(pid) for pid in pids)
            if ending == "crash":
                psutil.Process(info.pid).kill()
                psutil.Process(info.pid).wait(10)
        finally:
            daemon.down()  # after a crash: cleans what the dead daemon left
        gone = wait_until(
            lambda pids=pids: not any(_running(pid) for pid in pids) or None,
            what=f"no zygote or environment after {ending}",
            timeout=10,
        )
        assert gone


def _two_environments(endpoint: str) -> list[int]:
    """A zip function invoked twice at once: the pids of its two environments and zygote."""
    settings = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    role = boto3.client("iam", **settings).create_role(
        RoleName="pytest-zygote", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    client = boto3.client("lambda", **settings)
    code = textwrap.dedent(
        """\
        import os, time
        def handler(event, context):
            time.sleep(1)
            return [os.getpid(), os.getppid()]
        """
    )
    client.create_function(
        FunctionName="pytest-zygote",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": code})},
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: _invoke(client, "pytest-zygote")[1], range(2)))
    (pid_a, zygote), (pid_b, other) = results
    assert pid_a != pid_b and zygote == other and _is_zygote(zygote)
    return [pid_a, pid_b, zygote]


def test_a_package_that_starts_threads_is_imported_by_each_environment_itself(
    module_lab: helpers.Lab, zip_functions: ZipFunctions
):
    code = textwrap.dedent(
        """\
        import os, sys
        PRELOADED = "numpy" in sys.modules
        import numpy  # its BLAS starts threads at import: a zygote must not hold them

        def handler(event, context):
            return {"preloaded": PRELOADED, "ppid": os.getppid(), "sum": int(numpy.arange(4).sum())}
        """
    )
    name = zip_functions.create({"app.py": code}, "app.handler")["FunctionName"]
    response, result = _invoke(module_lab.client("lambda"), name)
    assert "FunctionError" not in response, result
    assert result["sum"] == 6 and result["preloaded"] is False
    assert _is_zygote(result["ppid"])  # forked all the same, by a zygote without numpy
