"""The fork server's pure parts and a worker's start, without a daemon."""

from __future__ import annotations

import http.client
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud.lambda_ import forkserver
from localcloud.lambda_.forkserver import ForkServers, preloadable, top_level_imports
from localcloud.lambda_.functions import FunctionSpec
from localcloud.lambda_.worker import Worker

HANDLER = textwrap.dedent(
    """\
    from __future__ import annotations
    import os, json as j
    import botocore.session
    from pymysql.cursors import DictCursor
    from . import sibling
    from .models import Row
    try:
        import ujson
    except ImportError:
        import simplejson
    if os.environ.get("X"):
        import yaml
    with open(__file__):
        import csv
    import shared
    import vendored.sub

    def handler(event, context):
        import requests  # runs at the first invocation, not at INIT
        return 1

    class Later:
        import decimal
    """
)


def test_top_level_imports_are_those_run_at_module_import():
    assert top_level_imports(HANDLER) == [
        "os", "json", "botocore", "pymysql", "ujson", "simplejson", "yaml", "csv",
        "shared", "vendored",
    ]  # fmt: skip


def test_preloadable_leaves_out_the_functions_own_modules(tmp_path: Path):
    task = tmp_path / "task"
    (task / "pkg").mkdir(parents=True)
    (task / "vendored").mkdir()
    (task / "pkg" / "__init__.py").write_text("")
    (task / "pkg" / "app.py").write_text(HANDLER)
    (task / "shared.py").write_text("")
    preloaded = preloadable("pkg.app.handler", [str(task)])
    assert preloaded == ["os", "json", "botocore", "pymysql", "ujson", "simplejson", "yaml", "csv"]
    # The handler's package itself is its own code too.
    (task / "os_tools.py").write_text("import os\nimport pkg\nimport boto3\n")
    assert preloadable("os_tools.handler", [str(task)]) == ["os", "boto3"]
    # A missing module or a syntax error: nothing to preload, the child reports it at INIT.
    assert preloadable("missing.handler", [str(task)]) == []
    (task / "broken.py").write_text("import boto3\ndef (:\n")
    assert preloadable("broken.handler", [str(task)]) == []


def test_a_failure_to_read_the_imports_preloads_nothing_instead_of_failing_the_invoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """Python 3.11's ast.parse can fail with a SystemError when threads parse at once."""
    (tmp_path / "app.py").write_text("import json\n")

    def mismatch(source: str) -> list[str]:
        raise SystemError("AST constructor recursion depth mismatch (before=72, after=65)")

    monkeypatch.setattr(forkserver, "top_level_imports", mismatch)
    with caplog.at_level(logging.ERROR, logger="localcloud.lambda_.forkserver"):
        assert preloadable("app.handler", [str(tmp_path)]) == []
    assert "preloading none" in caplog.text


def test_a_python_that_cannot_run_the_fork_server_falls_back_and_says_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "app.py").write_text("import json\n")
    servers = ForkServers()
    command = ["/bin/true", "-m", "awslambdaric", "app.handler"]
    with caplog.at_level(logging.WARNING, logger="localcloud.lambda_.forkserver"):
        for _ in range(2):
            assert servers.spawn(command, str(tmp_path), str(tmp_path), {"PATH": "/bin"}) is None
    warnings = [r.getMessage() for r in caplog.records if "start a process each" in r.getMessage()]
    assert len(warnings) == 1 and "did not start" in warnings[0]
    # Anything but `python -m awslambdaric <handler>` is not forked at all.
    assert servers.spawn(["/bin/sh", "-c", "true"], str(tmp_path), str(tmp_path), {}) is None
    servers.stop_all()


class _PollsAtOnce:
    """A fork server whose child asks the Runtime API for work before spawn() returns."""

    def __init__(self) -> None:
        self.first_poll = ""

    def spawn(self, command, cwd, task_root, env):
        connection = http.client.HTTPConnection(env["AWS_LAMBDA_RUNTIME_API"], timeout=1)
        try:
            connection.request("GET", "/2018-06-01/runtime/invocation/next")
            connection.getresponse()
            self.first_poll = "answered"
        except TimeoutError:
            self.first_poll = "waiting for work"  # what a runtime sees when nothing is queued
        except (http.client.HTTPException, ConnectionError):
            self.first_poll = "dropped"
        finally:
            connection.close()
        return subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE, start_new_session=True)


def test_a_runtime_polling_before_spawn_returns_waits_for_work(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    spec = FunctionSpec(
        name="fn", arn="arn:aws:lambda:us-east-1:123456789012:function:fn", version="$LATEST",
        memory_mb=128, timeout_s=3, runtime_label="python3.12", handler="app.handler",
        command=[sys.executable, "-m", "awslambdaric", "app.handler"], cwd=str(tmp_path),
        task_root=str(tmp_path), environment={}, reserved_concurrency=None,
        max_retry_attempts=2, max_event_age_s=60, fingerprint="",
    )  # fmt: skip
    servers = _PollsAtOnce()
    worker = Worker(spec, "http://127.0.0.1:1", "us-east-1", servers)  # type: ignore[arg-type]
    try:
        assert servers.first_poll == "waiting for work"
    finally:
        worker.stop()
