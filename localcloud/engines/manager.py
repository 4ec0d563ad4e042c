"""EngineManager: the public API, per-owner locking, instance records and port choice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from ..certificates import ca_bundle
from ..config import HOST
from . import mysql, postgres, redis
from .common import (
    PG_ADMIN,
    SAVED_FIELDS,
    EngineEndpoint,
    EngineError,
    EngineInstance,
    check_name,
    save_instance,
)
from .processes import (
    kill_leftovers,
    launch,
    port_free,
    postgres_ids,
    runs_on,
    stop_instance,
    terminate,
)

# Per kind: init(inst) and command(inst); for databases also ensure_account and set_password.
_ENGINES: dict[str, ModuleType] = {"mysql": mysql, "postgres": postgres, "redis": redis}


class EngineManager:
    """Starts, finds, stops and deletes private engine instances under one root directory."""

    def __init__(self, root: Path) -> None:
        """Load the instances recorded under root; their processes are not adopted."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards the dicts and port choice; never held long
        self._owner_locks: dict[str, threading.RLock] = {}
        self._instances: dict[str, EngineInstance] = {}
        self._reserved: set[int] = set()  # ports chosen by starts still in progress
        for meta in self.root.glob("*/instance.json"):
            with contextlib.suppress(OSError, ValueError, TypeError):
                info = json.loads(meta.read_text())
                inst = EngineInstance(dir=meta.parent, **{k: info.get(k) for k in SAVED_FIELDS})
                creds = meta.parent / "credentials.json"
                inst.secrets = json.loads(creds.read_text()) if creds.exists() else {}
                self._instances[inst.owner] = inst

    def mysql(
        self,
        owner: str,
        *,
        user: str,
        password: str,
        database: str | None = None,
        max_connections: int = 151,
    ) -> EngineEndpoint:
        """A running MariaDB (MySQL-compatible) server for owner, with user and database."""
        return self._ensure(
            "mysql", owner, password, user=user, database=database, max_connections=max_connections
        )

    def postgres(
        self,
        owner: str,
        *,
        user: str,
        password: str,
        database: str | None = None,
        max_connections: int = 100,
        tls: bool = False,
        require_tls: bool = False,
        host: str | None = None,
        port: int | None = None,
        hostnames: tuple[str, ...] = (),
    ) -> EngineEndpoint:
        """A running PostgreSQL server for owner, with user and database.

        tls=True turns ssl on with a certificate from the local cloud's CA for the server's
        address and `hostnames`; require_tls=True refuses connections without TLS (RDS's
        rds.force_ssl=1). host and port pin its address (an RDS instance answers on 5432).
        """
        if user == PG_ADMIN:
            raise EngineError(f"the user name {PG_ADMIN!r} is reserved by the local cloud")
        if require_tls and not tls:
            raise EngineError("require_tls needs tls=True")
        return self._ensure(
            "postgres",
            owner,
            password,
            user=user,
            database=database,
            max_connections=max_connections,
            tls=tls,
            require_tls=require_tls,
            host=host,
            fixed_port=port,
            hostnames=tuple(hostnames),
        )

    def redis(
        self,
        owner: str,
        *,
        tls: bool = False,
        host: str | None = None,
        port: int | None = None,
        cluster: bool = False,
        hostnames: tuple[str, ...] = (),
    ) -> EngineEndpoint:
        """A running memory-only Redis server for owner; TLS-only when tls=True.

        TLS uses a certificate from the local cloud's CA (`localcloud/certificates`) for the
        server's address and `hostnames`. host and port pin its address (an ElastiCache
        endpoint answers on 6379); cluster=True runs it in cluster mode, one node owning
        every slot.
        """
        fields = {"tls": tls, "host": host, "fixed_port": port, "cluster": cluster}
        return self._ensure("redis", owner, None, hostnames=tuple(hostnames), **fields)

    def get(self, owner: str) -> EngineEndpoint | None:
        """The owner's endpoint (pid None when not running), without starting anything."""
        inst = self._instances.get(owner)
        return self._endpoint(inst) if inst else None

    def stop(self, owner: str) -> None:
        """Stop the owner's server and keep its data."""
        with self._owner_lock(owner):
            if inst := self._instances.get(owner):
                stop_instance(inst)

    def remove(self, owner: str) -> None:
        """Stop the owner's server and delete its data."""
        with self._owner_lock(owner):
            if inst := self._instances.get(owner):
                stop_instance(inst)
            with self._lock:
                self._instances.pop(owner, None)
            shutil.rmtree(self._dir_for(owner), ignore_errors=True)

    def list(self) -> list[dict[str, Any]]:
        """One row per instance for `status`: kind, owner, port, pid, running, data size."""
        with self._lock:
            instances = sorted(self._instances.values(), key=lambda i: i.owner)
        rows = []
        for inst in instances:
            pid = inst.proc.pid if inst.alive() else inst.pid
            running = bool(pid and runs_on(pid, inst.data_dir))  # also a dead daemon's leftover
            rows.append(
                {
                    "kind": inst.kind,
                    "owner": inst.owner,
                    "port": inst.port,
                    "pid": pid if running else None,
                    "running": running,
                    "data_bytes": _size(inst.dir),
                    "data_dir": str(inst.data_dir),
                }
            )
        return rows

    def stop_all(self) -> None:
        """Stop every server (daemon shutdown); the data stays."""
        with self._lock:
            owners = list(self._instances)
        for owner in owners:
            self.stop(owner)

    def wipe(self) -> None:
        """Stop every server, including a dead daemon's leftovers, and delete all data."""
        self.stop_all()
        kill_leftovers(self.root)
        with self._lock:
            owners = list(self._instances)
        for owner in owners:
            self.remove(owner)
        for child in self.root.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def set_password(self, owner: str, user: str, password: str) -> None:
        """Change a user's password on the owner's running server."""
        check_name("user name", user)
        with self._owner_lock(owner):
            inst = self._instances.get(owner)
            if inst is None or not inst.alive():
                raise EngineError(f"no running engine for {owner}: start it, then change passwords")
            if inst.kind == "redis" or user == PG_ADMIN:
                raise EngineError(f"{owner}: the local cloud manages no password for {user!r}")
            with _admin_errors(inst, f"changing the password of {user!r}"):
                found = _ENGINES[inst.kind].set_password(inst, user, password)
            if not found:
                raise EngineError(f"there is no user {user!r} on the {inst.kind} server of {owner}")
            if user == inst.user:
                inst.secrets["password"] = password
                save_instance(inst)

    # ----- bookkeeping ----------------------------------------------------------------

    def _owner_lock(self, owner: str) -> threading.RLock:
        with self._lock:
            return self._owner_locks.setdefault(owner, threading.RLock())

    def _dir_for(self, owner: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", owner).strip("-")[:40]
        return self.root / f"{slug}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"

    def _endpoint(self, inst: EngineInstance) -> EngineEndpoint:
        i = inst
        pid = i.proc.pid if i.alive() else None
        ca = ca_bundle(self.root.parent) if i.tls else None
        pw = i.secrets.get("password")
        host = i.host or HOST
        return EngineEndpoint(
            i.kind, i.owner, host, i.port, i.user, pw, i.database, pid, i.data_dir, ca
        )

    def _ensure(self, kind: str, owner: str, password: str | None, **fields: Any) -> EngineEndpoint:
        check_name("user name", fields.get("user"))
        check_name("database name", fields.get("database"))
        with self._owner_lock(owner):
            inst = self._instances.get(owner) or EngineInstance(kind, owner, self._dir_for(owner))
            if inst.kind != kind:
                raise EngineError(f"{owner} already has a {inst.kind} engine; remove it first")
            # Settings that only take effect at start: restart to apply a change.
            start_only: tuple[str, ...] = ("tls",)
            if kind == "postgres":
                start_only = ("max_connections", "tls", "require_tls", "host", "fixed_port")
                start_only += ("hostnames",)
            if kind == "redis":
                start_only = ("tls", "host", "fixed_port", "cluster", "hostnames")
            if inst.alive() and any(getattr(inst, k) != fields.get(k, False) for k in start_only):
                stop_instance(inst)
            for key, value in fields.items():
                setattr(inst, key, value)
            if password is not None:
                inst.secrets["password"] = password
            with self._lock:
                self._instances[owner] = inst
            if not inst.alive():
                self._start(inst)
            if kind != "redis":
                self._ensure_account(inst)
            save_instance(inst)
            return self._endpoint(inst)

    def _pick_port(self, inst: EngineInstance) -> int:
        """The instance's previous port if still free, else a free port no other instance has."""
        if inst.fixed_port:
            return inst.fixed_port  # the caller chose a free address for it
        with self._lock:
            others = {i.port for i in self._instances.values() if i is not inst} | self._reserved
            port = inst.port if inst.port not in others and port_free(inst.port) else 0
            while not port or port in others:
                with socket.socket() as s:
                    s.bind((HOST, 0))
                    port = s.getsockname()[1]
            self._reserved.add(port)
            return port

    def _start(self, inst: EngineInstance) -> None:
        inst.dir.mkdir(parents=True, exist_ok=True)
        inst.dir.chmod(0o711 if postgres_ids(inst) else 0o700)  # postgres must pass through
        if inst.pid and runs_on(inst.pid, inst.data_dir):
            terminate(inst.pid, inst.stop_signal)  # a dead daemon's server holds the data dir
        inst.pid = None
        engine = _ENGINES[inst.kind]
        if not (inst.dir / "initialized").exists():
            shutil.rmtree(inst.data_dir, ignore_errors=True)  # a half-done earlier init
            engine.init(inst)
            (inst.dir / "initialized").touch()
        for attempt in range(3):
            port = inst.port = self._pick_port(inst)
            try:
                return launch(inst, *engine.command(inst))
            except EngineError:
                if attempt == 2 or inst.fixed_port or port_free(port):
                    raise  # not a lost race for the port: the log tail in the error says why
            finally:
                with self._lock:
                    self._reserved.discard(port)

    def _ensure_account(self, inst: EngineInstance) -> None:
        user, password = inst.user, inst.secrets["password"]
        with _admin_errors(inst, f"setting up user {user!r}"):
            _ENGINES[inst.kind].ensure_account(inst, password)


@contextlib.contextmanager
def _admin_errors(inst: EngineInstance, doing: str) -> Iterator[None]:
    try:
        yield
    except EngineError:
        raise
    except Exception as e:  # the driver's message may quote the statement, password included
        raise EngineError(
            f"{doing} on the {inst.kind} server of {inst.owner} failed "
            f"({type(e).__name__}); see {inst.log}"
        ) from None


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # servers delete temp files as we walk
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
