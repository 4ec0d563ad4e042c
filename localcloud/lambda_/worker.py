"""A warm worker: one `python -m awslambdaric <handler>` process and its Runtime API.

The process is started once (a cold start) and serves invocations one at a time until it
is reaped, retired after an update, or dies. It is forked from its image runtime's fork
server when there is one (`forkserver.py`), else started as a new interpreter. Its stdout
and stderr go to a pipe that is drained around each invocation, so what the handler prints
lands in that invocation's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass

from .. import orphans
from ..ec2 import function_session_token
from .forkserver import ForkedProcess, ForkServers
from .functions import FunctionSpec
from .runtime_api import Invocation, RuntimeApi

INIT_TIMEOUT_S = 10.0  # Lambda's limit on the init phase before the first invocation
_WATCH_INTERVAL_S = 0.1  # how often a waiting invoke checks the process and the deadline
_SIGNAL_NAMES = {6: "aborted", 9: "killed", 11: "segmentation fault", 15: "terminated"}


@dataclass
class Outcome:
    """What one invocation produced, with the figures of its REPORT line."""

    kind: str  # ok | function_error | init_error | too_large | timeout | exit
    body: bytes
    content_type: str
    duration_ms: float
    init_ms: float | None  # only on the invocation that started the worker
    max_memory_mb: int
    before_lines: list[str]  # printed before the invocation started (e.g. during init)
    lines: list[str]  # printed during the invocation
    exit_detail: str = ""


class Worker:
    """One runtime process serving one function version."""

    def __init__(
        self,
        spec: FunctionSpec,
        endpoint_url: str,
        region: str,
        fork_servers: ForkServers | None = None,
    ) -> None:
        self.spec = spec
        self.api = RuntimeApi()
        today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{today}/[{spec.version}]{uuid.uuid4().hex}"
        self.retired = False
        self.last_used = time.monotonic()
        self._spawned_at = time.perf_counter()
        self._served = 0
        self._init_output = b""
        self._status_fd: int | None = None  # /proc/<pid>/status, for Max Memory Used
        env = _environment(spec, self.api.address, endpoint_url, region, self.log_stream)
        forked = fork_servers and fork_servers.spawn(spec.command, spec.cwd, spec.task_root, env)
        self.process: subprocess.Popen[bytes] | ForkedProcess = forked or subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills handler children too
        )
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        orphans.record("lambda worker", self.process.pid)  # a crashed daemon's `up` ends it
        # Whatever init printed is in the pipe when the runtime first polls for work. Only
        # now: a forked runtime can poll before spawn() returns, and its output is read at
        # the first invocation anyway.
        self.api.on_first_poll = self._capture_init_output

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def invoke(self, invocation: Invocation) -> Outcome:
        """Run one invocation to its end: result, function error, timeout or process exit."""
        cold = self._served == 0
        self._served += 1
        earlier_output = self._drain()
        started = time.perf_counter()
        self.api.submit(invocation)
        kind, detail = self._wait(invocation, started)
        ended = time.perf_counter()
        dispatched = invocation.dispatched_at or ended
        duration_ms = (ended - dispatched) * 1000 if kind != "init_error" else 0.0
        first_poll = self.api.first_poll_at or dispatched
        init_ms = (first_poll - self._spawned_at) * 1000 if cold else None
        self.last_used = time.monotonic()
        before, output, body = (
            earlier_output + self._take_init_output(),
            self._drain(),
            invocation.body,
        )
        if kind in ("function_error", "init_error"):
            # Tracebacks name the code's files where AWS has them, /var/task/..., not here.
            local, on_aws = self.spec.task_root.encode(), self.spec.task_root_on_aws.encode()
            before, output = before.replace(local, on_aws), output.replace(local, on_aws)
            body = body.replace(local, on_aws) if body else body
        return Outcome(
            kind=kind,
            body=body,
            content_type=invocation.content_type,
            duration_ms=duration_ms,
            init_ms=init_ms,
            max_memory_mb=self._peak_memory_mb(),
            before_lines=_lines(before),
            lines=_lines(output),
            exit_detail=detail,
        )

    def _wait(self, invocation: Invocation, started: float) -> tuple[str, str]:
        """Wait for the invocation, watching the deadline and the process."""
        while not invocation.done.wait(_WATCH_INTERVAL_S):
            now = time.perf_counter()
            if invocation.dispatched_at is None:
                deadline = started + INIT_TIMEOUT_S + self.spec.timeout_s
            else:
                deadline = invocation.dispatched_at + self.spec.timeout_s
            if self.api.init_error is not None:
                invocation.finish("init_error", self.api.init_error)
            elif now >= deadline:
                self.stop()
                return "timeout", ""
            # Give a response that raced with the exit a moment to be recorded.
            elif not self.alive and not invocation.done.wait(0.05):
                return "exit", _exit_detail(self.process.returncode)
        return invocation.outcome, ""

    def stop(self) -> None:
        """Kill the process (and anything it started) and close its Runtime API."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        orphans.forget(self.process.pid)
        self.api.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None

    def _capture_init_output(self) -> None:
        self._init_output += self._drain()

    def _take_init_output(self) -> bytes:
        output, self._init_output = self._init_output, b""
        return output

    def drain_idle(self) -> None:
        """Discard output printed between invocations, so a chatty thread cannot fill the pipe."""
        self._drain()

    def _drain(self) -> bytes:
        """Everything the process wrote since the last drain."""
        stream = self.process.stdout
        if stream is None or stream.closed:
            return b""
        chunks = []
        while True:
            try:
                chunk = os.read(stream.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _peak_memory_mb(self) -> int:
        """The process's peak resident memory (Linux VmHWM), as REPORT's Max Memory Used."""
        try:
            if self._status_fd is None:  # kept open: one read per invocation, not an open
                self._status_fd = os.open(f"/proc/{self.process.pid}/status", os.O_RDONLY)
            status = os.pread(self._status_fd, 8192, 0)
        except OSError:
            return 0
        start = status.find(b"VmHWM:")
        if start < 0:
            return 0
        kilobytes = int(status[start + 6 : status.index(b"kB", start)])
        return max(1, round(kilobytes / 1024))


def _environment(
    spec: FunctionSpec, runtime_api: str, endpoint_url: str, region: str, log_stream: str
) -> dict[str, str]:
    """The variables Lambda sets, the image's ENV and the function's own variables."""
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime_label}",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": spec.handler,
        "LAMBDA_TASK_ROOT": spec.task_root,
        "LAMBDA_RUNTIME_DIR": spec.task_root,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # The execution role's credentials on AWS; the local cloud accepts any, and reads
        # from the session token which function calls (a VPC function needs a route to AWS).
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": function_session_token(spec.name),
        # Unmodified handler code reaches the local cloud through this one variable.
        "AWS_ENDPOINT_URL": endpoint_url,
        # Keep the machine's own AWS configuration out of the function.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    }
    # Users cannot override reserved variables (Lambda rejects them at configuration time).
    return {**spec.environment, **reserved}


def _exit_detail(returncode: int | None) -> str:
    """Lambda's wording for a runtime process that exited during an invocation."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode is not None and returncode < 0:
        name = _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {returncode}"


def _lines(output: bytes) -> list[str]:
    """Process output as log events: one per line; the runtime joins a traceback with \\r."""
    text = output.decode("utf-8", errors="replace")
    # Not splitlines(): it would also split on \r, breaking a traceback into pieces.
    return [line.replace("\r", "\n") for line in text.split("\n") if line.strip()]
