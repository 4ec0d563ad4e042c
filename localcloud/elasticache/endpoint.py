"""A cache's endpoint: its own loopback address with 6379 and 6380, and the reader port relay.

AWS gives each serverless cache a DNS name answering on 6379 (primary) and 6380 (reads,
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ReadReplicas.html). Here each cache
gets an address of its own in 127.0.3.0/24 and upward, so code that hard-codes port 6379 runs
unchanged; the Redis server listens on 6379 and a relay passes 6380's bytes, TLS and all, to
it. Only if no such address can be bound does the cache fall back to 127.0.0.1 at free ports.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from ..loopback import own_address

log = logging.getLogger("localcloud.elasticache")

PORT = 6379
READER_PORT = 6380
_CHUNK = 65536


def choose_address(taken: set[str]) -> str | None:
    """A loopback address where 6379 and 6380 are both free, or None (then use 127.0.0.1)."""
    return own_address(range(3, 8), (PORT, READER_PORT), taken, "caches")


class ReaderRelay:
    """Listens on the reader port and relays each connection to the primary port, both ways."""

    def __init__(self, host: str, port: int, target: tuple[str, int]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.target = target
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._accept, name=f"cache-reader-{port}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting and cut every relayed connection."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        with self._lock:
            connections = list(self._open)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server is gone: the client sees the connection close
                continue
            upstream.settimeout(None)
            for conn in (client, upstream):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
            source.close()  # each socket is the source of one pump, so it is closed once
