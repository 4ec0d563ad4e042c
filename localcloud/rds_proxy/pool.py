"""The proxy's pool of database connections: opened on demand, borrowed, given back, limited.

A connection is borrowed for one transaction (or one statement with autocommit on) and is
reused only by a session of the same database user with the same tracked session state. The
pool never holds more than its limit (MaxConnectionsPercent of the cluster's max_connections);
a borrower waits up to ConnectionBorrowTimeout for one, then gets error 9501.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pymysql
from pymysql.constants import CLIENT

from .responses import relay_query
from .statements import apply_statements
from .wire import AUTOCOMMIT, COM_QUERY_BYTE, PacketStream, frame

log = logging.getLogger("localcloud.rds_proxy")

BACKEND_CAPABILITIES = CLIENT.MULTI_STATEMENTS | CLIENT.PS_MULTI_RESULTS
RESPONSE_LIMIT = 0xFFFFFF  # one frame of a response; larger rows come in continuations
IDLE_SECONDS = float(os.environ.get("LOCALCLOUD_RDS_PROXY_IDLE_SECONDS", "300"))


class BorrowTimeout(Exception):
    """No database connection became free within ConnectionBorrowTimeout."""


class ConnectFailed(Exception):
    """The database refused a new connection (its message is kept)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class PoolLimits:
    """The target group's pool settings, in connections and seconds."""

    max_connections: int  # MaxConnectionsPercent of the cluster's max_connections
    max_idle: int  # MaxIdleConnectionsPercent of it
    borrow_timeout: float
    init_query: str | None = None


@dataclass(eq=False)
class Backend:
    """One database connection, its tracked state and what it is doing."""

    connection: pymysql.connections.Connection
    pool: Pool  # the pool it came from, and goes back to (even after the proxy moved on)
    user: str
    state: dict[str, str]
    stream: PacketStream = field(init=False)
    thread_id: int = field(init=False)
    last_used: float = field(default_factory=time.monotonic)
    in_transaction: bool = False
    pinned: bool = False

    def __post_init__(self) -> None:
        sock = self.connection._sock  # the pool speaks the protocol on it from here on
        if sock is None:
            raise ConnectFailed(2013, "Lost connection to the database")
        self.stream = PacketStream(sock, RESPONSE_LIMIT)
        self.thread_id = self.connection.thread_id()

    def run(self, sql: str) -> int:
        """Run one statement the proxy itself needs; its status flags, or ConnectFailed."""
        self.stream.send(frame(COM_QUERY_BYTE + sql.encode(), 0))
        outcome = relay_query(self.stream, None)
        if outcome.error:
            raise ConnectFailed(*outcome.error)
        return outcome.status or 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection._sock and self.connection._sock.close()
        with contextlib.suppress(Exception):
            self.connection._force_close()


class Pool:
    """Database connections of one proxy target, shared by its client sessions."""

    def __init__(
        self,
        host: str,
        port: int,
        limits: PoolLimits,
        on_open: Callable[[bool], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.limits = limits
        self._on_open = on_open or (lambda ok: None)
        self._idle: list[Backend] = []
        self._open = 0  # every connection, idle, borrowed or being opened
        self._borrowed: set[Backend] = set()
        self._cond = threading.Condition()
        self._closed = False

    # ----- borrowing ----------------------------------------------------------------------

    def borrow(self, user: str, password: str, state: dict[str, str]) -> Backend:
        """A connection in this state for this user; waits up to the borrow timeout."""
        deadline = time.monotonic() + self.limits.borrow_timeout
        with self._cond:
            while True:
                if self._closed:
                    raise ConnectFailed(2013, "The proxy's target is gone")
                for backend in reversed(self._idle):  # most recently used first
                    if backend.user == user and backend.state == state:
                        self._idle.remove(backend)
                        self._borrowed.add(backend)
                        return backend
                if self._open < self.limits.max_connections:
                    self._open += 1
                    spare = None
                    break
                if self._idle:  # at the limit: replace an idle connection of another state
                    spare = self._idle.pop(0)
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BorrowTimeout()
                self._cond.wait(remaining)
        if spare is not None:
            spare.close()
        try:
            backend = self._connect(user, password, state)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._borrowed.add(backend)
        return backend

    def give_back(self, backend: Backend, reusable: bool = True) -> None:
        """Return a borrowed connection; a pinned or broken one is closed instead."""
        backend.last_used = time.monotonic()
        with self._cond:
            self._borrowed.discard(backend)
            keep = reusable and not backend.pinned and not self._closed
            if keep:
                self._idle.append(backend)
            else:
                self._open -= 1
            self._cond.notify()
        if not keep:
            backend.close()

    def kill(self, backend: Backend, password: str) -> None:
        """End a connection whose client died mid-query: KILL its thread, then close it."""
        try:
            admin = pymysql.connect(
                host=self.host, port=self.port, user=backend.user, password=password,
                connect_timeout=5, autocommit=True,
            )  # fmt: skip
            with admin, contextlib.suppress(pymysql.MySQLError):
                admin.query(f"KILL {int(backend.thread_id)}")
        except pymysql.MySQLError as error:
            log.warning("could not kill database thread %s: %s", backend.thread_id, error)
        backend.pinned = True  # never back into the pool
        self.give_back(backend, reusable=False)

    # ----- upkeep -------------------------------------------------------------------------

    def set_limits(self, limits: PoolLimits) -> None:
        """New pool settings (ModifyDBProxyTargetGroup, or the cluster's max_connections)."""
        closing: list[Backend] = []
        with self._cond:
            self.limits = limits
            while self._idle and self._open > limits.max_connections:  # over a lowered limit
                closing.append(self._idle.pop(0))
                self._open -= 1
            self._cond.notify_all()
        for backend in closing:
            backend.close()

    def close_idle(self, now: float | None = None) -> int:
        """Close idle connections beyond MaxIdleConnectionsPercent that have been idle long."""
        now = time.monotonic() if now is None else now
        closing: list[Backend] = []
        with self._cond:
            surplus = len(self._idle) - self.limits.max_idle
            for backend in list(self._idle):
                if surplus <= 0:
                    break
                if now - backend.last_used >= IDLE_SECONDS:
                    self._idle.remove(backend)
                    self._open -= 1
                    closing.append(backend)
                    surplus -= 1
            # Over a lowered limit: idle connections go at once.
            while self._idle and self._open > self.limits.max_connections:
                closing.append(self._idle.pop(0))
                self._open -= 1
        for backend in closing:
            backend.close()
        return len(closing)

    def close(self) -> None:
        """Close every idle connection; borrowed ones close when given back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for backend in idle:
            backend.close()

    def counts(self) -> dict[str, int]:
        """Connections open, borrowed, pinned and in a transaction (for the metrics)."""
        with self._cond:
            borrowed = list(self._borrowed)
            return {
                "open": self._open,
                "borrowed": len(borrowed),
                "pinned": sum(1 for b in borrowed if b.pinned),
                "in_transaction": sum(1 for b in borrowed if b.in_transaction),
                "idle": len(self._idle),
            }

    # ----- opening --------------------------------------------------------------------

    def _connect(self, user: str, password: str, state: dict[str, str]) -> Backend:
        """Open a database connection, run InitQuery, then put it into the session's state."""
        names = state.get("names", "utf8mb4").split()[0].strip("'\"`")
        try:
            connection = pymysql.connect(
                host=self.host, port=self.port, user=user, password=password,
                charset=names, autocommit=None, client_flag=BACKEND_CAPABILITIES,
                connect_timeout=10,
            )  # fmt: skip
        except pymysql.err.MySQLError as error:
            self._on_open(False)
            code, message = (error.args + (0, ""))[:2] if error.args else (2003, str(error))
            raise ConnectFailed(int(code or 2003), str(message)) from None
        except (OSError, LookupError) as error:  # LookupError: a charset pymysql lacks
            self._on_open(False)
            raise ConnectFailed(2003, str(error)) from None
        connection._sock.settimeout(None)
        backend = Backend(connection, self, user, {})
        try:
            if self.limits.init_query:
                backend.run(self.limits.init_query)
            rest = {k: v for k, v in state.items() if k != "names" or " " in v}
            for statement in apply_statements(rest):
                backend.run(statement)
        except BaseException:
            backend.close()
            self._on_open(False)
            raise
        backend.state = dict(state)
        backend.in_transaction = False
        self._on_open(True)
        return backend


def autocommit_on(status: int) -> bool:
    """Whether the server status flags say autocommit is on."""
    return bool(status & AUTOCOMMIT)
