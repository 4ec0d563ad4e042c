"""What a restart of the daemon leaves behind: nothing. Processes are recorded, then cleaned.

moto's state lives in the daemon's memory, so a daemon that ends (cleanly or by `kill -9`)
takes every resource record with it. Processes it started would outlive it with no owner:
Fargate task processes in their own sessions and engine servers. So every task process and
Lambda worker is recorded as it starts, in `<state>/processes/<pid>.json` (pid and start
time, so a reused pid is never killed), and forgotten when it is stopped; engine servers are
recorded by the engine manager in their `instance.json`. `clean` (called by `up` before a
daemon starts and by `down` after it stopped) kills every recorded process with its process
group and descendants, kills leftover engine servers and deletes engine data, which no
cluster owns any more. See docs/architecture.md, "What survives a restart".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil

from .config import state_dir
from .engines import kill_leftovers


def _ledger(state: Path | None) -> Path:
    """The folder of process records (the daemon's state directory by default)."""
    return (state or state_dir()) / "processes"


def record(kind: str, pid: int, state: Path | None = None) -> None:
    """Note a process the daemon started (a session leader), so a later `clean` can end it."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        return  # already gone: nothing to clean later
    folder = _ledger(state)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"kind": kind, "pid": pid, "started": started}
    temporary = folder / f"{pid}.tmp"
    temporary.write_text(json.dumps(entry))
    temporary.replace(folder / f"{pid}.json")  # atomic: `down` may read it at any moment


def forget(pid: int, state: Path | None = None) -> None:
    """The process was stopped by the daemon itself: drop its record."""
    (_ledger(state) / f"{pid}.json").unlink(missing_ok=True)


def kill_recorded(state: Path | None = None) -> list[int]:
    """Kill every recorded process that still runs (its group and descendants too)."""
    killed = []
    for path in sorted(_ledger(state).glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            entry = json.loads(path.read_text())
            if _kill_session(int(entry["pid"]), float(entry["started"])):
                killed.append(int(entry["pid"]))
        path.unlink(missing_ok=True)
    return killed


def _kill_session(pid: int, started: float) -> bool:
    """SIGKILL a recorded leader, its group and descendants; False if it is not ours any more."""
    try:
        leader = psutil.Process(pid)
        if abs(leader.create_time() - started) > 0.01 or leader.status() == psutil.STATUS_ZOMBIE:
            return False  # the pid was reused by a process we did not start, or it has exited
        descendants = leader.children(recursive=True)
    except psutil.Error:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # tasks and workers lead their own process group
    for process in [leader, *descendants]:  # also children that left the group
        with contextlib.suppress(psutil.Error):
            process.kill()
    _wait_gone([leader, *descendants], timeout=5.0)
    return True


def _wait_gone(processes: list[psutil.Process], timeout: float) -> None:
    """Wait until the processes exited; a zombie counts as gone (its parent reaps it, or not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_running(process) for process in processes):
            return
        time.sleep(0.02)


def _running(process: psutil.Process) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def clean(state: Path | None = None) -> list[str]:
    """End everything a previous daemon of this state directory left; say what was killed."""
    state = state or state_dir()
    killed = [f"task or worker pid {pid}" for pid in kill_recorded(state)]
    killed += [f"worker pid {pid}" for pid in _kill_unrecorded_workers(state)]
    engines = state / "engines"
    if engines.is_dir():
        killed += [f"engine pid {pid}" for pid in kill_leftovers(engines)]
        for child in engines.iterdir():  # its owners (clusters) were in the dead daemon's moto
            shutil.rmtree(child, ignore_errors=True)
    return killed


def _kill_unrecorded_workers(state: Path) -> list[int]:
    """Kill awslambdaric processes working in the state directory that have no record."""
    killed = []
    root = str(state.resolve())
    for proc in Path("/proc").glob("[0-9]*"):  # Linux; elsewhere there is nothing to scan
        try:
            cwd = os.readlink(proc / "cwd")
            is_worker = b"awslambdaric" in (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if is_worker and cwd.startswith(root + os.sep) and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
    return killed
