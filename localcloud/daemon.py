"""Controlling the local cloud daemon from outside: up, down, health, status, reset.

Used by the CLI (`python -m localcloud ...`), by `helpers.connect("local")` and by
the tests. The daemon writes `daemon.json` (pid, port, control token; mode 0600) into the
state directory; everything here finds it through that file. Calls that change something
(reset, shutdown) are POSTs carrying that token in `X-LocalCloud-Token`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import orphans
from .config import HOST, code_version, configured_port, daemon_info_path, state_dir
from .timing import timing_profile

TOKEN_HEADER = "X-LocalCloud-Token"  # the daemon checks it (localcloud/server.py)
# Loopback calls must never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DaemonError(RuntimeError):
    """The local cloud could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class DaemonInfo:
    """Where a running daemon listens."""

    pid: int
    port: int
    endpoint: str
    code_version: str = ""
    token: str = ""  # the control token for reset and shutdown
    timing: str = "local"  # the timing profile it runs with (localcloud/timing.py)

    @classmethod
    def read(cls, state: Path | None = None) -> DaemonInfo | None:
        """The daemon's info file, if one exists."""
        path = daemon_info_path(state or state_dir())
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return cls(
            pid=data["pid"],
            port=data["port"],
            endpoint=data["endpoint"],
            code_version=data.get("code_version", ""),
            token=data.get("token", ""),
            timing=data.get("timing", "local"),
        )


def log_path(state: Path | None = None) -> Path:
    """The daemon's log file."""
    folder = (state or state_dir()) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "localcloud.log"


def call(info: DaemonInfo, name: str, method: str = "GET", timeout: float = 30.0) -> Any:
    """Call the daemon's control API (with its token) and return its JSON answer."""
    return call_endpoint(info.endpoint, name, method, timeout, token=info.token)


def call_endpoint(
    endpoint: str, name: str, method: str = "GET", timeout: float = 30.0, token: str = ""
) -> Any:
    """Call the control API of the daemon at `endpoint` and return its JSON answer."""
    request = urllib.request.Request(
        f"{endpoint}/_localcloud/{name}",
        method=method,
        data=b"" if method == "POST" else None,
        headers={TOKEN_HEADER: token} if token else {},
    )
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())


def running() -> DaemonInfo | None:
    """The running, healthy daemon, or None."""
    info = DaemonInfo.read()
    if info is None or not _alive(info.pid):
        return None
    try:
        call(info, "health", timeout=2.0)
    except (OSError, urllib.error.URLError):
        return None
    return info


def up(timeout: float = 60.0, quiet: bool = False) -> DaemonInfo:
    """Start the daemon detached (if it is not running) and wait until it is healthy."""
    info = running()
    timing = timing_profile().describe()
    if info is not None and info.code_version == code_version() and info.timing == timing:
        return info
    if info is not None and info.code_version != code_version():
        # The course was updated (e.g. git pull) while the daemon ran: it must load the new code.
        print("local cloud: its code changed since it started; restarting it (local state is lost)")
        down()
    elif info is not None:
        print(f"local cloud: restarting it with timing {timing} (local state is lost)")
        down()
    stale = DaemonInfo.read()
    if stale is not None and _alive(stale.pid):
        raise DaemonError(
            f"A local cloud process (pid {stale.pid}) exists but does not answer on "
            f"{stale.endpoint}. Run `python -m localcloud down` and try again."
        )
    daemon_info_path(state_dir()).unlink(missing_ok=True)
    orphans.clean(state_dir())  # a crashed daemon's tasks and engines: see docs/architecture.md
    port = configured_port() if _port_free(configured_port()) else 0
    logfile = log_path().open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", "--port", str(port)],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the notebook kernel or terminal that started it
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise DaemonError(
                f"The local cloud exited during start-up (code {process.returncode}).\n"
                f"Last log lines ({log_path()}):\n{tail(log_path(), 20)}"
            )
        info = running()
        if info is not None:
            if not quiet:
                took = time.monotonic() - started
                print(f"local cloud up at {info.endpoint} (pid {info.pid}, {took:.1f} s)")
            return info
        time.sleep(0.05)
    process.terminate()
    raise DaemonError(
        f"The local cloud did not become healthy within {timeout:.0f} s.\n"
        f"Last log lines ({log_path()}):\n{tail(log_path(), 20)}"
    )


def down(timeout: float = 20.0) -> list[str]:
    """Stop the daemon and every engine process it started; return what was stopped."""
    stopped: list[str] = []
    info = DaemonInfo.read()
    if info is not None and _alive(info.pid):
        try:
            call(info, "shutdown", method="POST", timeout=5.0)
        except (OSError, urllib.error.URLError):
            os.kill(info.pid, signal.SIGTERM)
        if not _wait_gone(info.pid, timeout):
            os.kill(info.pid, signal.SIGKILL)
            _wait_gone(info.pid, 5.0)
        _reap(info.pid)
        stopped.append(f"daemon pid {info.pid}")
    daemon_info_path(state_dir()).unlink(missing_ok=True)
    # The daemon stops its own processes; these are what a crashed daemon left.
    stopped += orphans.clean(state_dir())
    return stopped


def status() -> dict[str, Any]:
    """Services, engines and course resources of the running daemon ({"running": False} if none)."""
    info = running()
    if info is None:
        return {"running": False}
    state = call(info, "status")
    state["running"] = True
    return state


def status_text(state: dict[str, Any]) -> str:
    """The status as the tables `python -m localcloud status` prints."""
    if not state["running"]:
        return "local cloud: not running (start it with `python -m localcloud up`)"
    services = [{"service": name, "served by": "course provider"} for name in state["providers"]]
    services.append({"service": "everything else", "served by": "moto"})
    return "\n\n".join(
        [
            f"local cloud: running at {state['endpoint']} (pid {state['pid']}, "
            f"up {state['uptime_s']:.0f} s)",
            text_table(services),
            "engines:\n" + text_table(state["engines"]),
            "tagged resources:\n" + text_table(state["resources"]),
        ]
    )


def text_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as columns padded to their widest cell ('(none)' for no rows)."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    width = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}
    lines = [[c for c in columns], ["-" * width[c] for c in columns]]
    lines += [[str(row.get(c, "")) for c in columns] for row in rows]
    return "\n".join(
        "  ".join(cell.ljust(width[c]) for c, cell in zip(columns, line, strict=True)).rstrip()
        for line in lines
    )


def tail(path: Path, lines: int) -> str:
    """The last lines of a text file ('' if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: an exited child that nobody reaped yet still has a pid
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return True


def _reap(pid: int, timeout: float = 5.0) -> None:
    """Collect the exit status of a daemon this process started, so that no zombie is left.

    Otherwise only the garbage collection of up()'s Popen object would: a notebook kernel
    or a test that restarts the daemon kept the old one as a zombie until then. The wait is
    repeated because the daemon's main thread can show as a zombie while its other threads
    are still exiting, and until they have, there is no exit status to collect.
    """
    deadline = time.monotonic() + timeout
    # ChildProcessError: started by another process (a terminal's `localcloud up`), which reaps it
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.01)


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _port_free(port: int) -> bool:
    """True if nothing listens on this loopback port."""
    with socket.socket() as probe:
        # As the server will: connections of a crashed daemon left in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True
