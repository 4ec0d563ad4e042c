"""The MariaDB server behind each local Aurora MySQL cluster, kept through the engine manager.

A cluster's server starts at CreateDBCluster. The engine manager may start it again on another
port (after a crash or a daemon restart), so the provider refreshes port and pid before it
answers. A new master password goes to the running server, or starts a stopped one with it;
RebootDBInstance sets max_connections for the cluster's current maximum ACU.
"""

from __future__ import annotations

import contextlib
import threading

from ..engines import EngineError, EngineManager
from .state import ClusterRecord, max_connections_for


class ClusterServers:
    """Start, follow, reconfigure and remove the servers of the local Aurora MySQL clusters."""

    def __init__(self, engines: EngineManager, lock: threading.RLock) -> None:
        self._engines = engines
        self._lock = lock  # the provider's lock, which guards the records

    def start(self, record: ClusterRecord) -> None:
        """A fresh server for a new cluster (data an earlier daemon's cluster left goes first)."""
        self._engines.remove(record.owner)
        self._run(record, record.password, record.max_connections)

    def refresh(self, record: ClusterRecord) -> None:
        """Port and pid from the engine manager; the caller holds the lock."""
        if record.port is not None and (endpoint := self._engines.get(record.owner)):
            record.port, record.engine_pid = endpoint.port, endpoint.pid

    def set_password(self, record: ClusterRecord, password: str) -> None:
        """Change the master password on the server, starting it again if it was stopped."""
        try:
            self._engines.set_password(record.owner, record.master_username, password)
        except EngineError:
            self._run(record, password, record.max_connections)

    def apply_max_connections(self, record: ClusterRecord) -> None:
        """Set the cluster's max_connections from its current maximum ACU (a reboot does this)."""
        with self._lock:
            wanted = max_connections_for(record.scaling)
            password = record.password
        self._run(record, password, wanted)

    def remove(self, record: ClusterRecord) -> None:
        """Stop the cluster's server and delete its data."""
        self._engines.remove(record.owner)

    def discard(self, record: ClusterRecord) -> None:
        """Remove what a server that failed to start may have left, ignoring further failures."""
        with contextlib.suppress(EngineError, OSError):
            self._engines.remove(record.owner)

    def _run(self, record: ClusterRecord, password: str, max_connections: int) -> None:
        """The server running with these settings (started by the engine manager if stopped)."""
        endpoint = self._engines.mysql(
            record.owner,
            user=record.master_username,
            password=password,
            database=record.database,
            max_connections=max_connections,
        )
        with self._lock:
            record.max_connections = max_connections
            record.port, record.engine_pid = endpoint.port, endpoint.pid
