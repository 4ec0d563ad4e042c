"""Warm worker pools: reuse, concurrency limits, fresh workers after updates, idle reaping.

Per function: an invocation takes the most recently used idle worker (a warm start) or
starts a new one (a cold start) while the function is under its concurrency limit: its
reserved concurrency if set, else the local cloud's per-function limit. Over the limit the
invocation is throttled. When the function's code or configuration changes, idle workers
are stopped at once and busy ones when they finish, so the next invocation starts fresh.
Idle workers are stopped after `idle_seconds` (AWS keeps them for an unspecified few
minutes). A deleted function's workers are stopped at the reaper's next round (busy ones
when they finish), and a function without workers is no longer counted in `status`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .forkserver import ForkServers
from .functions import FunctionSpec
from .worker import Worker


@dataclass
class _Pool:
    """The workers of one function."""

    fingerprint: str = ""
    idle: list[Worker] = field(default_factory=list)
    busy: set[Worker] = field(default_factory=set)
    starting: int = 0

    @property
    def in_use(self) -> int:
        """Concurrent executions: busy workers plus those being started."""
        return len(self.busy) + self.starting


class Pools:
    """Every function's pool, and the thread that reaps idle workers."""

    def __init__(
        self,
        endpoint_url: str,
        idle_seconds: float,
        max_concurrency: int,
        exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.idle_seconds = idle_seconds
        self.max_concurrency = max_concurrency
        self._exists = exists  # function ARN -> still there? (moto keeps the functions)
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.fork_servers = ForkServers()  # one zygote per image runtime: cheap cold starts
        threading.Thread(target=self._reap_forever, name="lambda-reaper", daemon=True).start()

    def acquire(self, spec: FunctionSpec, region: str) -> tuple[Worker, bool, int] | None:
        """A worker for one invocation, whether it is a cold start, and the concurrency; None
        when throttled."""
        retired: list[Worker] = []
        with self._lock:
            pool = self._pools.setdefault(spec.arn, _Pool())
            if pool.fingerprint != spec.fingerprint:
                retired, pool.idle = pool.idle, []
                for worker in pool.busy:
                    worker.retired = True
                pool.fingerprint = spec.fingerprint
            worker = None
            while pool.idle and worker is None:
                candidate = pool.idle.pop()
                if candidate.alive:
                    worker = candidate
                else:
                    retired.append(candidate)
            limit = (
                self.max_concurrency
                if spec.reserved_concurrency is None
                else (spec.reserved_concurrency)
            )
            if worker is None and pool.in_use >= limit:
                pool_full = True
            else:
                pool_full = False
                if worker is None:
                    pool.starting += 1
                else:
                    pool.busy.add(worker)
            concurrency = pool.in_use
        if retired:  # stopping takes a few milliseconds: not on this invocation's path
            threading.Thread(target=_stop_all, args=(retired,), daemon=True).start()
        if pool_full:
            return None
        if worker is not None:
            return worker, False, concurrency
        try:
            worker = Worker(spec, self.endpoint_url, region, self.fork_servers)
        finally:
            with self._lock:
                pool.starting -= 1
                if worker is not None:
                    pool.busy.add(worker)
        return worker, True, concurrency

    def release(self, spec: FunctionSpec, worker: Worker) -> None:
        """Give a worker back after an invocation (stopped if dead, retired or outdated)."""
        with self._lock:
            pool = self._pools.get(spec.arn)
            keep = (
                pool is not None
                and worker.alive
                and not worker.retired
                and worker.spec.fingerprint == pool.fingerprint
                and not self._closed.is_set()
            )
            if pool is not None:
                pool.busy.discard(worker)
                if keep:
                    pool.idle.append(worker)
        if not keep:
            worker.stop()

    def stop_all(self) -> None:
        """Stop every worker (reset and shutdown)."""
        with self._lock:
            workers = [w for p in self._pools.values() for w in (*p.idle, *p.busy)]
            self._pools.clear()
        for worker in workers:
            worker.stop()
        self.fork_servers.stop_all()

    def close(self) -> None:
        """Stop the reaper and every worker."""
        self._closed.set()
        self.stop_all()

    def status(self) -> dict[str, Any]:
        """Counts for `status`."""
        with self._lock:
            return {
                "functions": len(self._pools),
                "idle workers": sum(len(p.idle) for p in self._pools.values()),
                "busy workers": sum(len(p.busy) for p in self._pools.values()),
                "fork servers": len(self.fork_servers.pids()),
            }

    def workers(self, arn: str) -> list[Worker]:
        """The live workers of one function (idle and busy), for tests and status."""
        with self._lock:
            pool = self._pools.get(arn)
            return [] if pool is None else [*pool.idle, *pool.busy]

    def _reap_forever(self) -> None:
        """Stop workers idle for too long or of deleted functions; drain the others' output."""
        while not self._closed.wait(min(1.0, self.idle_seconds / 4)):
            expired = self._retire_deleted()
            now = time.monotonic()
            with self._lock:
                for arn, pool in list(self._pools.items()):
                    keep = []
                    for worker in pool.idle:
                        if now - worker.last_used > self.idle_seconds or not worker.alive:
                            expired.append(worker)
                        else:
                            worker.drain_idle()
                            keep.append(worker)
                    pool.idle = keep
                    if not (pool.idle or pool.busy or pool.starting):
                        del self._pools[arn]  # nothing runs for it: status stops counting it
            for worker in expired:
                worker.stop()
            self.fork_servers.stop_idle(self.idle_seconds)

    def _retire_deleted(self) -> list[Worker]:
        """Forget the pools of functions that no longer exist; their idle workers to stop."""
        if self._exists is None:
            return []
        with self._lock:
            arns = list(self._pools)
        gone = [arn for arn in arns if not self._exists(arn)]  # outside the lock: reads moto
        stopping: list[Worker] = []
        with self._lock:
            for arn in gone:
                pool = self._pools.pop(arn, None)
                if pool is not None:
                    stopping += pool.idle
                    for worker in pool.busy:  # stopped by release(), when the invocation ends
                        worker.retired = True
        return stopping


def _stop_all(workers: list[Worker]) -> None:
    """Stop workers (in a background thread)."""
    for worker in workers:
        worker.stop()
