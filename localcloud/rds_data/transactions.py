"""Data API transactions: ids, their own connections, and the idle expiry that rolls them back.

A transaction holds one server connection (autocommit off) from BeginTransaction until
CommitTransaction, RollbackTransaction or expiry. Each call must come within the idle limit
(AWS: three minutes) of the previous one; a background sweeper rolls back and forgets
transactions that went quiet, so their locks are released even if nobody calls again.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import errors

log = logging.getLogger("localcloud.rds-data")

DEFAULT_IDLE_SECONDS = 180.0
MAX_ID_LENGTH = 192  # the API's limit on transactionId


def new_transaction_id() -> str:
    """A random id shaped like AWS's: 184 base64 characters."""
    return base64.b64encode(secrets.token_bytes(138)).decode()


@dataclass
class Transaction:
    """One open transaction and the connection it runs on."""

    id: str
    cluster_arn: str
    connection: Any = field(repr=False)
    release: Callable[[Any, bool], None] = field(repr=False)  # (connection, broken) -> None
    last_used: float = field(default_factory=time.monotonic)
    busy: threading.Lock = field(default_factory=threading.Lock, repr=False)


class TransactionRegistry:
    """Open transactions by id; thread-safe; expires idle ones in a background thread."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._open: dict[str, Transaction] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def add(self, transaction: Transaction) -> None:
        """Register a new transaction and make sure the sweeper runs."""
        with self._lock:
            self._open[transaction.id] = transaction
            if self._sweeper is None or not self._sweeper.is_alive():
                self._stop.clear()
                self._sweeper = threading.Thread(
                    target=self._sweep_forever, name="rds-data-transactions", daemon=True
                )
                self._sweeper.start()

    @contextmanager
    def use(self, transaction_id: str, cluster_arn: str) -> Iterator[Transaction]:
        """Hold a live transaction for one call; unknown, expired or busy ones are refused."""
        transaction = self._live(transaction_id, cluster_arn)
        if not transaction.busy.acquire(blocking=False):
            raise errors.still_running()
        try:
            if transaction.id not in self._open:  # finished or expired while we waited
                raise errors.transaction_not_found(transaction_id)
            transaction.last_used = time.monotonic()
            yield transaction
        finally:
            transaction.last_used = time.monotonic()
            transaction.busy.release()

    def finish(self, transaction: Transaction) -> None:
        """Forget a transaction (committed, rolled back or aborted); the caller ends it."""
        with self._lock:
            self._open.pop(transaction.id, None)

    def _live(self, transaction_id: str, cluster_arn: str) -> Transaction:
        """The open transaction with this id on this cluster, expiring it if it idled too long."""
        with self._lock:
            transaction = self._open.get(transaction_id)
        if transaction is None or transaction.cluster_arn != cluster_arn:
            raise errors.transaction_not_found(transaction_id)
        if self._idle(transaction) and transaction.busy.acquire(blocking=False):
            try:
                self._expire(transaction)
            finally:
                transaction.busy.release()
            raise errors.transaction_not_found(transaction_id)
        return transaction

    def _idle(self, transaction: Transaction) -> bool:
        """True when the last call ended longer ago than the idle limit."""
        return time.monotonic() - transaction.last_used > self.idle_seconds

    def _expire(self, transaction: Transaction) -> None:
        """Roll back and forget an idle transaction (the caller holds its busy lock)."""
        with self._lock:
            if self._open.pop(transaction.id, None) is None:
                return
        log.info("transaction %s... idle, rolled back", transaction.id[:8])
        rollback_and_release(transaction)

    def sweep(self) -> None:
        """Expire every idle transaction that is not running a call right now."""
        with self._lock:
            candidates = [t for t in self._open.values() if self._idle(t)]
        for transaction in candidates:
            if transaction.busy.acquire(blocking=False):
                try:
                    if self._idle(transaction):
                        self._expire(transaction)
                finally:
                    transaction.busy.release()

    def _sweep_forever(self) -> None:
        """The sweeper thread: a few checks per idle period, until stopped."""
        interval = min(max(self.idle_seconds / 4, 0.05), 5.0)
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:  # the sweeper must outlive one bad connection
                log.exception("transaction sweep failed")

    def close_all(self) -> None:
        """Roll back every open transaction and stop the sweeper (reset and shutdown)."""
        self._stop.set()
        with self._lock:
            open_now = list(self._open.values())
            self._open.clear()
        for transaction in open_now:
            # A call still running keeps its connection; the engines stop right after anyway.
            if transaction.busy.acquire(timeout=2):
                try:
                    rollback_and_release(transaction)
                finally:
                    transaction.busy.release()

    def count(self) -> int:
        """How many transactions are open."""
        with self._lock:
            return len(self._open)


def rollback_and_release(transaction: Transaction) -> None:
    """Roll a transaction back and give its connection back (dropped if it is broken)."""
    broken = False
    try:
        transaction.connection.rollback()
    except Exception:
        broken = True
    transaction.release(transaction.connection, broken)
