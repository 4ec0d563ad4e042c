"""What a proxy's client sessions share: its settings, its pool, its metrics and its log."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .metrics import ProxyMetrics
from .pool import Pool

Credentials = Callable[[str], "str | None"]  # database user -> password from a secret, or None
IamUsers = Callable[[str], bool]  # database user -> whether its secret's IAMAuth is REQUIRED
LogLine = Callable[[str], None]


@dataclass
class ProxySettings:
    """The proxy's settings a session reads on each connection (ModifyDBProxy changes them)."""

    require_tls: bool = False
    iam_required: bool = False
    idle_client_timeout: float = 1800.0
    exclude_variable_sets: bool = False
    debug_logging: bool = False


@dataclass
class ProxyRuntime:
    """The live parts of one proxy, shared by its listener and its client sessions."""

    name: str
    region: str
    host: str
    port: int
    settings: ProxySettings
    credentials: Credentials
    metrics: ProxyMetrics
    log: LogLine
    tls: ssl.SSLContext | None = None
    pool: Pool | None = None  # None until a target is registered and reachable
    iam_users: IamUsers | None = None  # per user; None: settings.iam_required for everyone
    clients: int = 0
    tls_clients: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requires_iam(self, user: str) -> bool:
        """Whether `user` logs in with an IAM token (AWS sets IAMAuth per secret)."""
        return self.settings.iam_required if self.iam_users is None else self.iam_users(user)

    def client_opened(self, tls: bool) -> None:
        with self._lock:
            self.clients += 1
            self.tls_clients += int(tls)

    def client_closed(self, tls: bool) -> None:
        with self._lock:
            self.clients -= 1
            self.tls_clients -= int(tls)

    def client_counts(self) -> tuple[int, int]:
        """(client connections, of which over TLS)."""
        with self._lock:
            return self.clients, self.tls_clients
