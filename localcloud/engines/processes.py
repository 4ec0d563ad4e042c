"""Server processes: spawning, waiting for an answer, stopping, free ports and leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import HOST
from . import install
from .common import EngineError, EngineInstance, os_user, save_instance

START_TIMEOUT = 60.0  # generous: crash recovery on a busy 2-core machine takes a while
STOP_TIMEOUT = 10.0


def kill_leftovers(root: Path) -> list[int]:
    """Kill servers recorded under root whose command line still names their data dir."""
    killed = []
    for meta in sorted(Path(root).glob("*/instance.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            info = json.loads(meta.read_text())
            pid = info.get("pid")
            if pid and runs_on(pid, meta.parent / "data"):  # the location decides, not the JSON
                sig = signal.SIGINT if info.get("kind") == "postgres" else signal.SIGTERM
                terminate(pid, sig)
                killed.append(pid)
    return killed


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if Path("/proc/self").exists():
            return []
        ps = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True)
        return ps.stdout.decode(errors="replace").split()  # no /proc (macOS): good enough
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)  # exited, waiting for a parent that is not us to reap it


def runs_on(pid: int, data_dir: Path) -> bool:
    """True if pid is alive and one of its arguments is exactly data_dir (pids get reused)."""
    d = str(data_dir)
    return not _zombie(pid) and any(a == d or a.endswith("=" + d) for a in _cmdline(pid))


def terminate(pid: int, sig: int) -> None:
    """Stop a server that is not (or no longer) our child: signal, wait, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        if _gone(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # it leads its own session: this takes its workers too


def port_free(port: int, host: str = HOST) -> bool:
    """True if a server could bind this loopback port now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def launch(inst: EngineInstance, cmd: list[str], probe: Callable[[], None]) -> None:
    """Start cmd for inst and wait until probe succeeds; on failure stop it and say why."""
    started, last = time.monotonic(), ""
    with inst.log.open("a") as log:
        log.write(f"=== {time.strftime('%F %T')} localcloud: {inst.kind} on port {inst.port}\n")
        log.flush()
        try:
            inst.proc = subprocess.Popen(cmd, **_spawn_args(inst, log))
        except OSError as e:
            raise EngineError(f"cannot run {cmd[0]} for {inst.owner}: {e}") from None
    inst.pid = inst.proc.pid
    save_instance(inst)  # record the pid before waiting, so `down` can find a hung start
    while inst.proc.poll() is None:
        try:
            probe()
            return
        except Exception as e:
            last = f"{type(e).__name__}: {e}"[:300]  # connect errors carry no passwords
            if time.monotonic() - started > START_TIMEOUT:
                break
            time.sleep(0.05)
    code = inst.proc.poll()
    problem = f"exited with code {code}" if code is not None else f"did not answer ({last})"
    stop_instance(inst)
    raise EngineError(
        f"the {inst.kind} server for {inst.owner} (port {inst.port}) {problem}. "
        f"End of {inst.log}:\n{_tail(inst.log)}\n"
        "If its data is damaged, delete it (local cloud `reset`) and try again."
    )


def stop_instance(inst: EngineInstance) -> None:
    """Stop the instance's server (our child, or a recorded pid still on its data dir)."""
    if inst.proc is not None:
        if inst.proc.poll() is None:
            inst.proc.send_signal(inst.stop_signal)
            try:
                inst.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.proc.pid, signal.SIGKILL)  # with its worker processes
                inst.proc.wait()
    elif inst.pid and runs_on(inst.pid, inst.data_dir):
        terminate(inst.pid, inst.stop_signal)
    inst.proc, inst.pid = None, None
    if inst.dir.exists():
        save_instance(inst)


def postgres_ids(inst: EngineInstance) -> tuple[int, int] | None:
    """The postgres user's uid and gid when PostgreSQL must not run as us (root)."""
    if inst.kind != "postgres" or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise EngineError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user: install the "
            "postgresql package (it creates that user) or run as a normal user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _spawn_args(inst: EngineInstance, log: Any) -> dict[str, Any]:
    """Popen arguments: own session, output to the log, maybe as the postgres user."""
    args = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT}
    args["start_new_session"] = True  # a Ctrl-C in the terminal must not reach servers
    if ids := postgres_ids(inst):
        # Popen switches user in the child before exec: unlike `runuser`, no wrapper process.
        args |= {"user": ids[0], "group": ids[1], "extra_groups": [], "cwd": inst.data_dir}
    return args


def run_setup(inst: EngineInstance, cmd: list[str]) -> None:
    """Run a setup tool (initdb, mysql_install_db) to its end, its output in the server log."""
    with inst.log.open("a") as log:
        log.write(f"=== {time.strftime('%F %T')} localcloud runs {Path(cmd[0]).name}\n")
        log.flush()
        done = subprocess.run(cmd, timeout=300, **_spawn_args(inst, log))
    if done.returncode:
        raise EngineError(
            f"{Path(cmd[0]).name} for {inst.owner} failed "
            f"(exit {done.returncode}). End of {inst.log}:\n{_tail(inst.log)}"
        )


def command_line(inst: EngineInstance, key: str, template: str, **extra: object) -> list[str]:
    """The binary, then the template's words, filled in after splitting (paths have spaces)."""
    if not (path := install.binaries()[key]):
        raise EngineError(
            f"no {key} server binary: install {', '.join(install.missing_packages())} "
            "(`make setup` or `python -m localcloud install-engines` does it)"
        )
    values = {"data": inst.data_dir, "d": inst.dir, "port": inst.port, "host": HOST}
    values |= {"max": inst.max_connections, "me": os_user()}
    values |= extra
    return [str(path), *(word.format(**values) for word in template.split())]
