"""Connections to the clusters' MariaDB servers: a small thread-safe pool per login.

The Data API keeps connections to the cluster warm so that each call does not pay for a
login. Here one pool per (host, port, user, password, database) keeps a few idle pymysql
connections; idle ones are closed after a few seconds so that they never keep a cluster's
server busy (the capacity monitor reads load from the server itself).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysql.constants import CLIENT, SERVER_STATUS

from .results import DECODERS

log = logging.getLogger("localcloud.rds-data")

MAX_IDLE_PER_LOGIN = 4
IDLE_CLOSE_SECONDS = 5.0
CONNECT_TIMEOUT = 5


@dataclass(frozen=True)
class Target:
    """One login on one server: what a pool is keyed by."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)  # targets get logged; passwords must not be
    database: str | None


def connect(target: Target) -> Any:
    """A new autocommit connection that returns MySQL's text for dates and decimals."""
    return pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database or None,
        charset="utf8mb4",
        autocommit=True,
        conv=DECODERS,
        connect_timeout=CONNECT_TIMEOUT,
        # Connector/J's default: UPDATE counts the rows it matched, not only those it changed.
        client_flag=CLIENT.FOUND_ROWS,
    )


def close_quietly(connection: Any) -> None:
    """Close a connection that may already be dead."""
    with contextlib.suppress(Exception):
        connection.close()


class Pools:
    """Idle connections by target; acquire() reuses a live one or logs in anew."""

    def __init__(self) -> None:
        self._idle: dict[Target, list[tuple[float, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pruner: threading.Thread | None = None

    def acquire(self, target: Target) -> Any:
        """A live connection for target (pymysql errors from a failed login propagate)."""
        while True:
            with self._lock:
                idle = self._idle.get(target)
                entry = idle.pop() if idle else None
            if entry is None:
                return connect(target)
            connection = entry[1]
            try:
                connection.ping(reconnect=False)  # the server may have restarted meanwhile
                return connection
            except Exception:
                close_quietly(connection)

    def release(self, target: Target, connection: Any, broken: bool = False) -> None:
        """Give a connection back: kept idle (autocommit on again) unless broken or surplus."""
        if not broken:
            try:
                # A transaction left open (autocommit off, or a START TRANSACTION sent as a
                # statement) must not reach the next caller.
                in_transaction = connection.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
                if in_transaction or not connection.get_autocommit():
                    connection.rollback()
                if not connection.get_autocommit():
                    connection.autocommit(True)
            except Exception:
                broken = True
        if broken or not connection.open:
            close_quietly(connection)
            return
        with self._lock:
            idle = self._idle.setdefault(target, [])
            if len(idle) < MAX_IDLE_PER_LOGIN:
                idle.append((time.monotonic(), connection))
                connection = None
            self._start_pruner()
        if connection is not None:
            close_quietly(connection)

    def _start_pruner(self) -> None:
        """Start the thread that closes idle connections (the caller holds the lock)."""
        if self._pruner is None or not self._pruner.is_alive():
            self._stop.clear()
            self._pruner = threading.Thread(
                target=self._prune_forever, name="rds-data-pool", daemon=True
            )
            self._pruner.start()

    def _prune_forever(self) -> None:
        """Close connections idle for longer than IDLE_CLOSE_SECONDS, until stopped."""
        while not self._stop.wait(IDLE_CLOSE_SECONDS / 4):
            self.prune(IDLE_CLOSE_SECONDS)

    def prune(self, max_idle_seconds: float) -> None:
        """Close every connection that has been idle for longer than max_idle_seconds."""
        cutoff = time.monotonic() - max_idle_seconds
        stale = []
        with self._lock:
            for target, idle in list(self._idle.items()):
                stale += [c for since, c in idle if since < cutoff]
                idle[:] = [(since, c) for since, c in idle if since >= cutoff]
                if not idle:
                    del self._idle[target]
        for connection in stale:
            close_quietly(connection)

    def close_all(self) -> None:
        """Close every idle connection and stop the pruner (reset and shutdown)."""
        self._stop.set()
        with self._lock:
            everything = [c for idle in self._idle.values() for _, c in idle]
            self._idle.clear()
        for connection in everything:
            close_quietly(connection)

    def idle_count(self) -> int:
        """How many idle connections the pools hold."""
        with self._lock:
            return sum(len(idle) for idle in self._idle.values())
