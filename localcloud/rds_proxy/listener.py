"""A proxy's listener: its own loopback address on port 3306, a thread per client session.

Each proxy gets an address of its own in 127.0.0.0/8 (127.0.2.1, 127.0.2.2, ...) on the
engine's default port, as AWS's endpoints are names that resolve to the proxy's own
addresses; an address another local cloud already uses on this machine is skipped. Only if
no such address can be bound does the proxy fall back to a free port on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
import threading
from collections.abc import Callable

from ..loopback import own_address
from .runtime import ProxyRuntime
from .session import ClientSession

log = logging.getLogger("localcloud.rds_proxy")

PORT = 3306
GAUGE_SECONDS = 1.0


def bind_endpoint(taken: set[str]) -> socket.socket:
    """A listening socket on a free 127.0.x.y:3306, else on 127.0.0.1 with any free port."""
    tried = set(taken)
    for _ in range(3):  # another process may take the address between the check and the bind
        address = own_address(range(2, 8), (PORT,), tried, "proxies")
        if address is None:
            break
        tried.add(address)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, PORT))
        except OSError:
            sock.close()
            continue
        sock.listen(1024)
        return sock
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


class ProxyListener:
    """Accepts client connections for one proxy and samples its gauges every second."""

    def __init__(self, sock: socket.socket, runtime: ProxyRuntime) -> None:
        self.sock = sock
        self.runtime = runtime
        self.ready: Callable[[], bool] = lambda: True  # False: connections are refused
        self._ids = itertools.count(1)
        self._sessions: set[ClientSession] = set()
        self._sessions_lock = threading.Lock()
        self._stop = threading.Event()
        self._accepting = threading.Thread(
            target=self._accept, name=f"rds-proxy-{runtime.name}", daemon=True
        )
        self._sampling = threading.Thread(
            target=self._sample, name=f"rds-proxy-{runtime.name}-gauges", daemon=True
        )

    def start(self) -> None:
        self._accepting.start()
        self._sampling.start()

    def close(self) -> None:
        """Stop accepting and disconnect every client (the proxy is being deleted)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not self.ready():  # AWS: the endpoint does not answer before `available`
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # a reset, as a refused connection
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = ClientSession(client, self.runtime, next(self._ids))
            threading.Thread(
                target=self._serve, args=(session,), name=f"rds-proxy-session-{session.id}",
                daemon=True,
            ).start()  # fmt: skip

    def _serve(self, session: ClientSession) -> None:
        with self._sessions_lock:
            self._sessions.add(session)
        try:
            session.run()
        finally:
            with self._sessions_lock:
                self._sessions.discard(session)

    def _sample(self) -> None:
        """Publish the current connection counts once a second (and trim idle connections)."""
        while not self._stop.wait(GAUGE_SECONDS):
            try:
                self.sample()
            except Exception:
                log.exception("proxy %s: sampling failed", self.runtime.name)

    def sample(self) -> None:
        runtime = self.runtime
        clients, tls = runtime.client_counts()
        values = {
            "ClientConnections": clients,
            "ClientConnectionsTLS": tls,
            "ClientConnectionsNoTLS": clients - tls,
        }
        pool = runtime.pool
        if pool is not None:
            pool.close_idle()
            counts = pool.counts()
            values.update(
                {
                    "DatabaseConnections": counts["open"],
                    "DatabaseConnectionsCurrentlyBorrowed": counts["borrowed"],
                    "DatabaseConnectionsCurrentlySessionPinned": counts["pinned"],
                    "DatabaseConnectionsCurrentlyInTransaction": counts["in_transaction"],
                    "MaxDatabaseConnectionsAllowed": pool.limits.max_connections,
                }
            )
        runtime.metrics.gauges(values)
