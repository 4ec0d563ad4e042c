"""The fork server ("zygote") of one image runtime: run by the image's Python, stdlib only.

Started as `<image python> zygote.py <fd> <runtime module> [package ...]`, where fd is its
control socket (a SOCK_SEQPACKET Unix socket). It imports the runtime interface client
and the packages named, then serves fork requests from the daemon, one at a time: a JSON
message {"id", "env", "cwd", "args", "preload"} with the pipe for the child's stdout and
stderr attached (SCM_RIGHTS). It answers {"op": "forked", "id", "pid"} and, when it reaps a
child, {"op": "exit", "pid", "code"} (a negative code is the signal that ended it, as in
`subprocess`). The child then runs the runtime exactly as `python -m <runtime module> args`.

The daemon names the runtime's modules that are safe to share (not its bootstrap, which
loads the native client). The zygote stays single-threaded and holds no socket but its
control socket, or it answers {"op": "unsafe", "reason", "package"} and exits: a forked
child must not inherit a half-held lock or a connection (numpy, for one, starts threads when
imported; the daemon then starts another zygote without it). When the daemon goes away
(end of file on the socket), it kills its children.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback

_MESSAGE_BYTES = 1 << 20
# awslambdaric's C extension reads AWS_LAMBDA_RUNTIME_API when it is loaded, and each child
# has its own address: it must be loaded in the child (by awslambdaric.bootstrap).
_NATIVE_CLIENT = "runtime_client"


def main() -> dict | None:
    """Serve the daemon; in a forked child, return that child's request."""
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this script's folder: nothing of the daemon's may be importable
    control = socket.socket(fileno=int(sys.argv[1]))
    runtime, packages = sys.argv[2], sys.argv[3:]
    importlib.import_module(runtime)
    attempted: set[str] = set()
    skipped, unsafe = _preload(control, packages, attempted)
    _send(control, {"op": "unsafe" if unsafe else "ready", "skipped": skipped, **unsafe})
    if unsafe:
        return None
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup byte is what matters
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([control, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
        _reap(control, children)
        if control not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(control, _MESSAGE_BYTES, 1)
        if not message:  # the daemon is gone: its workers are of no use to anyone
            for pid in children:
                _kill_group(pid)
            return None
        request = json.loads(message)
        skipped, unsafe = _preload(control, request.get("preload", []), attempted)
        if unsafe:
            _send(control, {"op": "unsafe", "id": request["id"], **unsafe})
            return None
        sys.stdout.flush()  # nothing a preload printed may reach a child's log twice
        sys.stderr.flush()
        gc.freeze()  # the collector would write to every shared object: keep the pages shared
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_read, wake_write):
                os.close(fd)
            control.close()
            return {**request, "stdout_fd": fds[0], "runtime": runtime}
        for fd in fds:
            os.close(fd)
        children.add(pid)
        _send(control, {"op": "forked", "id": request["id"], "pid": pid, "skipped": skipped})


def run_child(request: dict) -> None:
    """Become the execution environment: as `python -m <runtime> <args>` in a new session."""
    os.setsid()  # its own process group: a timeout kills what the handler started too
    stdout = request["stdout_fd"]
    os.dup2(stdout, 1)
    os.dup2(stdout, 2)
    os.close(stdout)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if not getattr(sys.flags, "safe_path", False):  # PYTHONSAFEPATH (3.11) leaves it out
        sys.path.insert(0, request["cwd"])  # what -m puts first: the working directory
    runtime = request["runtime"]
    sys.argv = [runtime, *request["args"]]
    _poll_without_a_thread()
    runpy.run_module(runtime, run_name="__main__", alter_sys=True)


def _poll_without_a_thread() -> None:
    """Have awslambdaric wait for the next invocation on its main thread.

    For python3.12+ runtime labels it starts a thread for every poll, so that the main thread
    stays free for signals while idle: half the environment's CPU per invocation here, and a
    local environment is stopped with SIGKILL, never signalled to shut down gracefully.
    """
    try:
        from awslambdaric.lambda_config import LambdaConfigProvider
    except ImportError:  # an older runtime interface client: it polls on the main thread
        return
    if hasattr(LambdaConfigProvider, "SUPPORTED_THREADPOLLING_ENVS"):
        LambdaConfigProvider.SUPPORTED_THREADPOLLING_ENVS = frozenset()


def _preload(
    control: socket.socket, packages: list[str], attempted: set[str]
) -> tuple[list[str], dict]:
    """Import what was not tried yet: the names that failed (the child imports them itself),
    and why forking became unsafe, naming the package that made it so ({} if it is safe)."""
    skipped = []
    for name in packages:
        if name in attempted:
            continue
        attempted.add(name)
        try:
            if importlib.util.find_spec(name) is None:
                skipped.append(name)
                continue
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - any failure: leave the import to the child
            skipped.append(name)
        reason = _unsafe(control)
        if reason:
            return skipped, {"reason": f"{name}: {reason}", "package": name}
    reason = _unsafe(control)
    return skipped, {"reason": reason} if reason else {}


def _unsafe(control: socket.socket) -> str:
    """Why forking now would be unsafe (a thread, an open socket, the native client), or ""."""
    if _NATIVE_CLIENT in sys.modules:
        return f"{_NATIVE_CLIENT} was imported: it reads the Runtime API address only once"
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:") and int(line.split()[1]) != 1:
                return f"a preloaded package started threads ({line.split()[1]} running)"
    ours = os.fstat(control.fileno()).st_ino
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:") and target != f"socket:[{ours}]":
            return "a preloaded package opened a socket"
    return ""


def _reap(control: socket.socket, children: set[int]) -> None:
    """Report every child that exited."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(control, {"op": "exit", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _send(control: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the daemon is gone; the next receive ends the loop
        control.send(json.dumps(message).encode())


if __name__ == "__main__":
    try:
        child = main()
    except Exception:  # tell the daemon why, so it can fall back and say so
        control = socket.socket(fileno=int(sys.argv[1]))
        _send(control, {"op": "unsafe", "reason": traceback.format_exc()})
        sys.exit(1)
    if child is not None:
        run_child(child)
