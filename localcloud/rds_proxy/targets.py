"""A proxy's registered target: its health, checked by logging in, and the pool sized from it.

The check logs in to the cluster's server with the proxy's secrets: AVAILABLE when one
secret's credentials work (the server's max_connections then sizes the pool), otherwise
UNAVAILABLE with AWS's reason. It runs at registration, on ModifyDBProxy and every
HEALTH_SECONDS while the pool has no open connection (the pool's own logins show health).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from ..context import CloudContext
from ..rds import RdsProvider
from .health import log_in, read_credentials, role_exists
from .pool import Pool, PoolLimits
from .records import Health, ProxyRecord

log = logging.getLogger("localcloud.rds_proxy")

HEALTH_SECONDS = 5.0


def pool_limits(record: ProxyRecord) -> PoolLimits:
    """The pool's limits from the target group's settings and the server's max_connections."""
    config, most = record.pool_config, record.max_connections or 1
    return PoolLimits(
        max_connections=max(1, math.floor(most * config["MaxConnectionsPercent"] / 100)),
        max_idle=math.floor(most * config["MaxIdleConnectionsPercent"] / 100),
        borrow_timeout=float(config["ConnectionBorrowTimeout"]),
        init_query=config.get("InitQuery"),
    )


class TargetMonitor:
    """Checks the health of each proxy's target and keeps its pool pointed at the server."""

    def __init__(
        self,
        cloud: CloudContext,
        lock: threading.RLock,
        registered: Callable[[], list[ProxyRecord]],
    ) -> None:
        self.cloud = cloud
        self._lock = lock  # the provider's: records change under it
        self._registered = registered  # the proxies that have a target
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, record: ProxyRecord, periodic: bool = False) -> None:
        """Log in to the cluster with the secrets; AVAILABLE, or UNAVAILABLE with a reason.

        A periodic check skips the login while the pool holds working connections, so the
        proxy never has more database connections than its pool's limit.
        """
        if record.cluster is None or record.runtime is None:
            return
        pool = record.runtime.pool
        if periodic and pool is not None and pool.counts()["open"] > 0:
            return
        rds = self.cloud.providers.get(RdsProvider)
        try:
            database = rds.cluster_database(record.region, record.account_id, record.cluster)
        except KeyError:
            self._set_health(record, Health("UNAVAILABLE", "UNREACHABLE", "DB cluster not found"))
            return
        moto = self.cloud.moto
        credentials = read_credentials(moto, record) if role_exists(moto, record) else []
        most, health = log_in(database.host, database.port, credentials)
        if most is not None:
            with self._lock:
                record.max_connections = most
                self._ensure_pool(record, database.host, database.port)
        self._set_health(record, health)

    def start(self) -> None:
        """Run the periodic checks (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="rds-proxy-health", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """End the periodic checks."""
        self._stop.set()

    def _ensure_pool(self, record: ProxyRecord, host: str, port: int) -> None:
        """The proxy's pool for the cluster's server, new if the server moved (under the lock)."""
        runtime = record.runtime
        if runtime is None or record.cluster is None:
            return
        if runtime.pool is not None and (runtime.pool.host, runtime.pool.port) == (host, port):
            runtime.pool.set_limits(pool_limits(record))
            return
        old = runtime.pool
        runtime.pool = Pool(host, port, pool_limits(record), self._count_open(record))
        if old is not None:
            old.close()

    @staticmethod
    def _count_open(record: ProxyRecord) -> Any:
        def counted(ok: bool) -> None:
            if record.runtime is not None:
                name = (
                    "DatabaseConnectionsSetupSucceeded" if ok else "DatabaseConnectionsSetupFailed"
                )
                record.runtime.metrics.count(name)

        return counted

    def _set_health(self, record: ProxyRecord, health: Health) -> None:
        with self._lock:
            changed = record.health.state != health.state
            record.health = health
        if changed and record.runtime is not None:
            text = health.state + (
                f" ({health.reason}: {health.description})" if health.reason else ""
            )
            record.runtime.log(f"The target {record.cluster} is {text}.")

    def _loop(self) -> None:
        while not self._stop.wait(HEALTH_SECONDS):
            for record in self._registered():
                try:
                    self.check(record, periodic=True)
                except Exception:
                    log.exception("proxy %s: health check failed", record.name)
