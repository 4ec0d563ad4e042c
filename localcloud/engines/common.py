"""Shared pieces of the engine manager: errors, endpoints, instance records and small helpers."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PG_ADMIN = "localcloud_admin"  # the manager's own superuser, kept apart from the owner's user
SAVED_FIELDS = ("kind", "owner", "port", "pid", "user", "database", "max_connections", "tls")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


class EngineError(RuntimeError):
    """An engine could not be installed, started, stopped or configured."""


@dataclass
class EngineEndpoint:
    """How to reach one private engine instance."""

    kind: str
    owner: str
    host: str
    port: int
    user: str | None
    password: str | None = field(repr=False)  # endpoints get printed; passwords must not be
    database: str | None
    pid: int | None
    data_dir: Path
    tls_ca_file: Path | None = None


@dataclass
class EngineInstance:
    """One server the manager runs for an owner: its directory, port, process and secrets."""

    kind: str
    owner: str
    dir: Path
    port: int = 0
    pid: int | None = None
    user: str | None = None
    database: str | None = None
    max_connections: int | None = None
    tls: bool = False
    require_tls: bool = False  # PostgreSQL: hostssl only (RDS's rds.force_ssl=1)
    # Redis for ElastiCache, PostgreSQL for RDS: own address and port, names in the certificate.
    host: str | None = None
    fixed_port: int | None = None
    cluster: bool = False
    hostnames: tuple[str, ...] = ()
    proc: subprocess.Popen | None = field(default=None, repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    @property
    def stop_signal(self) -> int:
        return signal.SIGINT if self.kind == "postgres" else signal.SIGTERM  # pg: fast shutdown

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def save_instance(inst: EngineInstance) -> None:
    """Write instance.json (no secrets) and, if there are secrets, credentials.json (0600)."""
    info = {k: getattr(inst, k) for k in SAVED_FIELDS} | {"data_dir": str(inst.data_dir)}
    tmp = inst.dir / "instance.json.tmp"
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(inst.dir / "instance.json")  # atomic: `down` may read it at any moment
    if inst.secrets:
        write_private(inst.dir / "credentials.json", json.dumps(inst.secrets))


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (mode 0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def os_user() -> str:
    """The name of the user this process runs as."""
    return pwd.getpwuid(os.geteuid()).pw_name  # not $USER: runuser/sudo may leave it stale


def check_name(what: str, name: str | None) -> None:
    """Refuse a user or database name that is not a plain SQL identifier."""
    if name is not None and not _NAME.fullmatch(name):
        raise EngineError(f"invalid {what} {name!r}: use letters, digits and _ (at most 63)")


def socket_path(inst: EngineInstance, name: str) -> Path:
    """Where a server's Unix socket goes: its data dir, or /tmp when that path is too long."""
    path = inst.data_dir / name
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    short = Path("/tmp") / f"localcloud-{os.geteuid()}"  # for a deep state dir
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.geteuid():
        raise EngineError(f"{short} belongs to another user: delete it, or use a shorter path")
    # Named after the whole data path: two local clouds (two state directories) may each run
    # a server for an owner of the same name, and must not share its socket.
    digest = hashlib.sha256(str(inst.data_dir.resolve()).encode()).hexdigest()[:16]
    return short / f"{digest}-{name}"
