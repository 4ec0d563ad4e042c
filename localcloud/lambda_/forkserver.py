"""Cold starts forked from a per-image process that has already imported the runtime.

A cold start used to be a whole `python -m awslambdaric <handler>`: an interpreter, then the
runtime interface client, then the handler's packages (boto3 alone is a large part of it).
Now the first cold start of an image runtime (one Python executable, working directory,
task root and the variables read at interpreter start or import) starts a fork server, a
"zygote" (`zygote.py`), that imports the runtime and the third-party packages the handler
module imports at top level; each execution environment is a fork of it that sets its own
environment and runs the runtime as `python -m awslambdaric <handler>` would. The handler's
own modules are never preloaded: its module-level code is the function's INIT and runs in
each environment, as on Lambda. A new image digest or new zip code is a new Python path or
task root, so it gets a new zygote; zygotes without children are stopped after the pool's
idle time. If a zygote cannot start, the worker falls back to starting the process itself.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

import psutil

from .. import orphans

_ZYGOTE = str(Path(__file__).with_name("zygote.py"))
_RUNTIME = "awslambdaric"
# What every environment imports before the handler, except the runtime's bootstrap and
# client: they load its C extension, which reads the Runtime API address once, at load.
_RUNTIME_MODULES = [
    f"{_RUNTIME}.{name}"
    for name in ("lambda_config", "lambda_context", "lambda_runtime_exception",
                 "lambda_runtime_log_utils", "lambda_runtime_marshaller", "lambda_literals")
] + ["http.client", "concurrent.futures.thread", "importlib.util"]  # fmt: skip
_REPLY_TIMEOUT_S = 30.0  # a storm's forks queue up, and the zygote may import a package first
# Variables read when the interpreter starts or a preloaded package is imported: a change
# to one of them needs another zygote. The function's own variables are set in each child.
_ZYGOTE_VARIABLES = re.compile(
    r"^(PYTHON\w*|LC_\w+|LANG|TZ|PATH|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR|SSL_CERT_\w+"
    r"|AWS_LAMBDA_LOG_FORMAT|AWS_LAMBDA_LOG_LEVEL|AWS_CONFIG_FILE|AWS_SHARED_CREDENTIALS_FILE)$"
)
log = logging.getLogger(__name__)


class UnsafePackage(OSError):
    """A preloaded package made forking unsafe (it started a thread or opened a socket)."""

    def __init__(self, package: str, reason: str) -> None:
        super().__init__(reason)
        self.package = package


# Cold starts come in storms, one thread each, and Python 3.11's ast.parse failed once when
# several ran at once ("SystemError: AST constructor recursion depth mismatch", seen under a
# 50-request load; CPython issue gh-106905 reports the error from threaded programs).
_PARSE_LOCK = threading.Lock()


def top_level_imports(source: str) -> list[str]:
    """The top-level names of absolute imports run when the module is imported, in order.

    Imports inside functions and classes run later (or never); those inside module-level
    `if`, `try` and `with` blocks run at import and count.
    """
    names: list[str] = []
    with _PARSE_LOCK:
        pending = list(ast.parse(source).body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module]
        else:
            if isinstance(node, ast.If | ast.Try | ast.With | ast.TryStar):
                inner = [*node.body, *getattr(node, "orelse", [])]
                inner += getattr(node, "finalbody", [])
                for handler in getattr(node, "handlers", []):
                    inner += handler.body
                pending[:0] = inner
            continue
        for name in found:
            top = name.split(".")[0]
            if top != "__future__" and top not in names:
                names.append(top)
    return names


def preloadable(handler: str, roots: Iterable[str]) -> list[str]:
    """Packages the handler module imports at top level that are not the function's own."""
    roots = [Path(root) for root in dict.fromkeys(roots)]
    module = handler.rsplit(".", 1)[0]
    relative = Path(*module.split("."))
    for root in roots:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate.is_file():
                try:
                    names = top_level_imports(candidate.read_text(encoding="utf-8"))
                except (OSError, SyntaxError, ValueError):
                    return []  # the child reports the error at its INIT, as on Lambda
                except Exception:  # preloading only saves time: it must never fail an invoke
                    log.exception("cannot read the imports of %s; preloading none", candidate)
                    return []
                own = {module.split(".")[0]}
                return [n for n in names if n not in own and not _is_own(n, roots)]
    return []


def _is_own(name: str, roots: list[Path]) -> bool:
    """True when the name is a module or package of the function's code."""
    return any(
        (root / f"{name}.py").exists() or (root / name).is_dir() or any(root.glob(f"{name}.*.so"))
        for root in roots
    )


class ForkedProcess:
    """An execution environment forked by a zygote, with `subprocess.Popen`'s interface."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self.returncode: int | None = None
        self.stdout: BinaryIO | None = None  # the read end of its output pipe
        self._exited = threading.Event()
        try:
            self._started = psutil.Process(pid).create_time()
        except psutil.Error:
            self._started = None

    def exited(self, code: int) -> None:
        """The zygote reaped it."""
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        """The exit code once it exited, else None."""
        if self.returncode is None and not self.server.alive and not self._running():
            self.exited(-signal.SIGKILL)  # its zygote is gone, and with it the real status
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; subprocess.TimeoutExpired after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            self._exited.wait(0.1 if left is None else min(0.1, left))
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def _running(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return (
                process.create_time() == self._started and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


class ForkServer:
    """One zygote process and the thread that reads its messages."""

    def __init__(self, python: str, cwd: str, env: Mapping[str, str], preload: list[str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._replies: dict[int, dict] = {}
        self._replied = threading.Condition()
        self._children: dict[int, ForkedProcess] = {}
        self._abandoned: set[int] = set()  # requests whose caller stopped waiting
        self.last_used = time.monotonic()
        self.alive = True
        self.stopped = False  # stopped by the daemon (not failed)
        self.unsafe_package = ""  # the package a fork request's preload found unsafe
        fd = theirs.fileno()
        self.process = subprocess.Popen(
            [python, _ZYGOTE, str(fd), _RUNTIME, *preload],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
            start_new_session=True,  # its own group: `clean` after a crash ends it
        )
        theirs.close()
        orphans.record("lambda zygote", self.process.pid)  # a crashed daemon's `up` ends it
        ready = self._receive(timeout=30.0)
        if ready is None or ready.get("op") != "ready":
            reason = "no answer" if ready is None else ready.get("reason") or ready.get("op")
            self.stop()
            if ready is not None and ready.get("package"):
                raise UnsafePackage(ready["package"], reason)
            raise OSError(f"the fork server did not start: {reason}")
        self.skipped = ready.get("skipped", [])
        threading.Thread(target=self._read_forever, name="lambda-zygote", daemon=True).start()

    def fork(
        self, env: Mapping[str, str], cwd: str, args: list[str], preload: list[str]
    ) -> ForkedProcess | None:
        """A new child running the runtime with `args`; None if the zygote failed."""
        read_end, write_end = os.pipe()
        request_id = next(self._ids)
        request = {"id": request_id, "env": dict(env), "cwd": cwd, "args": args, "preload": preload}
        self.last_used = time.monotonic()
        try:
            with self._send_lock:
                socket.send_fds(self.control, [json.dumps(request).encode()], [write_end])
        except OSError:
            os.close(read_end)
            return None
        finally:
            os.close(write_end)
        reply = self._wait_reply(request_id)
        if reply is None or reply.get("op") != "forked":
            self.unsafe_package = (reply or {}).get("package", "")
            os.close(read_end)
            return None
        pid = reply["pid"]
        # Registered before the reply is handed over: the reader thread owns _children.
        child = self._children.get(pid)
        if child is None:
            os.close(read_end)
            return None
        child.stdout = os.fdopen(read_end, "rb", buffering=0)
        return child

    @property
    def children(self) -> int:
        """How many of its children still run."""
        return sum(1 for child in list(self._children.values()) if child.poll() is None)

    def stop(self) -> None:
        """End the zygote (its children go with it) and forget it."""
        self.stopped, self.alive = True, False
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)  # end of file: it kills its children
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        for child in list(self._children.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        orphans.forget(self.process.pid)
        self.control.close()

    def _read_forever(self) -> None:
        """Record exits and hand fork replies to the threads waiting for them."""
        while True:
            message = self._receive()
            if message is None:
                break
            if message.get("op") == "exit":
                child = self._children.pop(message["pid"], None)
                if child is not None:
                    child.exited(int(message["code"]))
                continue
            if message.get("op") == "forked":
                pid = message["pid"]
                self._children[pid] = ForkedProcess(self, pid)
            with self._replied:
                if message.get("id") in self._abandoned:  # too late: its worker started itself
                    with contextlib.suppress(ProcessLookupError, KeyError):
                        os.killpg(message["pid"], signal.SIGKILL)
                    continue
                self._replies[message.get("id", 0)] = message
                self._replied.notify_all()
        self.alive = False
        with self._replied:
            self._replied.notify_all()

    def _wait_reply(self, request_id: int) -> dict | None:
        deadline = time.monotonic() + _REPLY_TIMEOUT_S
        with self._replied:
            while request_id not in self._replies and self.alive:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._abandoned.add(request_id)
                    return None
                self._replied.wait(left)
            return self._replies.pop(request_id, None)

    def _receive(self, timeout: float | None = None) -> dict | None:
        """The next message; None at end of file, on error or after `timeout`."""
        self.control.settimeout(timeout)
        try:
            data = self.control.recv(1 << 16)
        except OSError:
            return None
        return json.loads(data) if data else None


class ForkServers:
    """The daemon's zygotes, one per image runtime, started on first use."""

    def __init__(self) -> None:
        self._servers: dict[tuple, ForkServer] = {}
        self._failed: dict[tuple, str] = {}
        self._draining: list[ForkServer] = []  # no new forks; stopped when their children end
        self._unsafe: dict[tuple, set[str]] = {}  # packages never to preload, per zygote key
        self._lock = threading.Lock()
        self._starting: dict[tuple, threading.Lock] = {}

    def spawn(
        self, command: list[str], cwd: str, task_root: str, env: Mapping[str, str]
    ) -> ForkedProcess | None:
        """A forked environment for `python -m awslambdaric <handler>`; None: start it yourself."""
        if len(command) != 4 or command[1:3] != ["-m", _RUNTIME] or sys.platform != "linux":
            return None
        python, handler = command[0], command[3]
        zygote_env = {k: v for k, v in env.items() if _ZYGOTE_VARIABLES.match(k)}
        key = (python, cwd, task_root, tuple(sorted(zygote_env.items())))
        wanted = _RUNTIME_MODULES + preloadable(handler, [cwd, task_root])
        # Again if the reaper stopped the zygote just as it was chosen, or without a package
        # that made it unsafe to fork.
        for _ in range(4):
            with self._lock:
                unsafe = self._unsafe.get(key, set())
                preload = [name for name in wanted if name not in unsafe]
            server = self._server(key, python, cwd, zygote_env, preload)
            if server is None:
                if key in self._failed:
                    return None
                continue
            child = server.fork(env, cwd, [handler], preload)
            if child is not None:
                return child
            if server.unsafe_package:
                self._leave_out(key, server.unsafe_package, server)
            elif not server.stopped:
                self._retire(key, server, "it stopped answering")
                return None
        return None

    def _leave_out(self, key: tuple, package: str, server: ForkServer | None) -> None:
        """Never preload `package` for this key again; a zygote that imported it retires."""
        with self._lock:
            self._unsafe.setdefault(key, set()).add(package)
            if server is not None and self._servers.get(key) is server:
                self._draining.append(self._servers.pop(key))
        log.info(
            "Lambda cold starts of %s import %s themselves: it is unsafe to fork", key[0], package
        )

    def _server(
        self, key: tuple, python: str, cwd: str, env: dict[str, str], preload: list[str]
    ) -> ForkServer | None:
        with self._lock:
            server = self._servers.get(key)
            if server is not None and server.alive:
                return server
            if key in self._failed:
                return None
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:  # one start per key; the other cold starts of a storm wait for it
            with self._lock:
                server = self._servers.get(key)
                if server is not None and server.alive:
                    return server
                if key in self._failed:
                    return None
            try:
                server = ForkServer(python, cwd, env, preload)
            except UnsafePackage as error:
                self._leave_out(key, error.package, None)
                return None
            except OSError as error:
                self._retire(key, None, str(error))
                return None
            with self._lock:
                dead = self._servers.get(key)
                if dead is not None:  # it died (killed?): what it forked may still be serving
                    self._draining.append(dead)
                self._servers[key] = server
            return server

    def _retire(self, key: tuple, server: ForkServer | None, reason: str) -> None:
        """Stop using a zygote: cold starts of its runtime start their own processes."""
        with self._lock:
            if self._servers.get(key) is server:
                self._servers.pop(key, None)
            first = key not in self._failed
            self._failed[key] = reason
            if server is not None:
                self._draining.append(server)  # its running environments keep running
        if first:
            log.warning("Lambda cold starts of %s start a process each: %s", key[0], reason)

    def stop_idle(self, idle_seconds: float) -> None:
        """Stop zygotes without running children that forked none for `idle_seconds`."""
        now = time.monotonic()
        with self._lock:
            for key, server in list(self._servers.items()):
                if not server.alive:  # died: what it forked may still be serving
                    self._draining.append(self._servers.pop(key))
            idle = [
                key
                for key, server in self._servers.items()
                if server.children == 0 and now - server.last_used > idle_seconds
            ]
            stopping = [self._servers.pop(key) for key in idle]
            stopping += [server for server in self._draining if server.children == 0]
            self._draining = [server for server in self._draining if server not in stopping]
        for server in stopping:
            server.stop()

    def stop_all(self) -> None:
        """Stop every zygote (the daemon's reset and shutdown)."""
        with self._lock:
            stopping, self._servers = [*self._servers.values(), *self._draining], {}
            self._draining = []
            self._failed.clear()
        for server in stopping:
            server.stop()

    def pids(self) -> list[int]:
        """The zygotes' process ids, for tests and status."""
        with self._lock:
            return [server.process.pid for server in self._servers.values()]
