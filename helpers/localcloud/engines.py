"""Private MariaDB, PostgreSQL and Redis servers that the local cloud's providers run on.

Process model: one instance per owner (e.g. an Aurora cluster) in `<root>/<slug>-<hash>/`
holding `data/`, `server.log`, `instance.json` (kind, owner, port, pid: no secrets, so any
process may read it) and `credentials.json` (mode 0600, for restarts). Servers start from the
machine's binaries in their own session (a terminal's Ctrl-C does not reach them), bind to
127.0.0.1 on a free port, and count as started once a real client gets an answer. They outlive
a crashed daemon; `kill_leftovers` lets another process (the CLI's `down`) end them.

The root catch: `initdb` and `postgres` refuse to run as root. As root, PostgreSQL runs as the
unprivileged `postgres` user (switched in the child before exec, so the recorded pid is the
postmaster itself) on a data directory owned by that user, and every directory above it must
be searchable by that user. Not root (a student's laptop): everything runs as the current user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.localcloud.config import HOST

PACKAGES = {"mysql": "mariadb-server", "postgres": "postgresql", "redis": "redis-server"}
PG_ADMIN = "localcloud_admin"  # the manager's own superuser, kept apart from the owner's user
START_TIMEOUT = 60.0  # generous: crash recovery on a busy 2-core machine takes a while
STOP_TIMEOUT = 10.0
# Small caches so that many small clusters fit (about 55 MB RSS and 34 MB of disk each).
_MYSQL_SIZES = " --innodb-buffer-pool-size=8M --innodb-log-file-size=4M"
_SAVED = ("kind", "owner", "port", "pid", "user", "database", "max_connections", "tls")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


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
class _Instance:
    kind: str
    owner: str
    dir: Path
    port: int = 0
    pid: int | None = None
    user: str | None = None
    database: str | None = None
    max_connections: int | None = None
    tls: bool = False
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


def binaries() -> dict[str, Path | None]:
    """Server binaries per kind, plus the initialisers `mysql_install` and `initdb`."""
    pg_dirs = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if d.parent.name.isdigit()]
    pg_dirs.sort(key=lambda d: int(d.parent.name))  # the highest major wins
    pg_bin = next((d for d in reversed(pg_dirs) if (d / "initdb").exists()), None)
    return {
        "mysql": _which("mariadbd", "mysqld"),
        "mysql_install": _which("mariadb-install-db", "mysql_install_db"),
        "postgres": pg_bin / "postgres" if pg_bin else _which("postgres"),
        "initdb": pg_bin / "initdb" if pg_bin else _which("initdb"),
        "redis": _which("redis-server"),
    }


def _which(*names: str) -> Path | None:
    # /usr/sbin holds mariadbd but is not on a normal user's PATH on Debian.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    for name in names:
        if found := shutil.which(name, path=path):
            return Path(found)
    return None


def missing_packages() -> list[str]:
    """The apt packages to install for the kinds whose binaries are missing."""
    found = binaries()
    need = {"mysql": ("mysql", "mysql_install"), "postgres": ("postgres", "initdb")}
    return [
        package
        for kind, package in PACKAGES.items()
        if any(found[key] is None for key in need.get(kind, (kind,)))
    ]


def install_missing(*, interactive: bool = False) -> None:
    """Install the missing engine packages with apt-get, as root or through sudo."""
    packages = missing_packages()
    if not packages:
        return
    wanted = " ".join(packages)
    if shutil.which("apt-get") is None:
        raise EngineError(
            f"missing engine packages ({wanted}) and there is no apt-get: install MariaDB, "
            "PostgreSQL and Redis yourself (macOS: `brew install mariadb postgresql redis`)"
        )
    env = ["env", "DEBIAN_FRONTEND=noninteractive"]
    sudo = shutil.which("sudo")
    if os.geteuid() == 0:
        prefix = env
    elif sudo and interactive:
        prefix = ["sudo", *env]  # may ask for the user's password in the terminal
    elif sudo and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n", *env]
    else:
        raise EngineError(
            f"missing engine packages: {wanted}. Install them once with: "
            f"sudo apt-get update && sudo apt-get install -y {wanted}"
        )
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        run = subprocess.run([*prefix, *cmd], capture_output=not interactive, text=True)
        if run.returncode:
            tail = "\n".join(f"{run.stdout or ''}{run.stderr or ''}".splitlines()[-15:])
            raise EngineError(f"`{' '.join(cmd)}` failed (exit {run.returncode}):\n{tail}")
    if still := missing_packages():
        raise EngineError(f"installed {wanted}, yet binaries are still missing for: {still}")


def kill_leftovers(root: Path) -> list[int]:
    """Kill servers recorded under root whose command line still names their data dir."""
    killed = []
    for meta in sorted(Path(root).glob("*/instance.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            info = json.loads(meta.read_text())
            pid = info.get("pid")
            if pid and _runs_on(pid, meta.parent / "data"):  # the location decides, not the JSON
                sig = signal.SIGINT if info.get("kind") == "postgres" else signal.SIGTERM
                _terminate(pid, sig)
                killed.append(pid)
    return killed


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if Path("/proc/self").exists():
            return []
        ps = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True)
        return ps.stdout.decode(errors="replace").split()  # no /proc (macOS): good enough
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)  # exited, waiting for a parent that is not us to reap it


def _runs_on(pid: int, data_dir: Path) -> bool:
    """True if pid is alive and one of its arguments is exactly data_dir (pids get reused)."""
    d = str(data_dir)
    return not _zombie(pid) and any(a == d or a.endswith("=" + d) for a in _cmdline(pid))


def _terminate(pid: int, sig: int) -> None:
    """Stop a server that is not (or no longer) our child: signal, wait, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        if _gone(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # it leads its own session: this takes its workers too


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # servers delete temp files as we walk
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _os_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name  # not $USER: runuser/sudo may leave it stale


def _check_name(what: str, name: str | None) -> None:
    if name is not None and not _NAME.fullmatch(name):
        raise EngineError(f"invalid {what} {name!r}: use letters, digits and _ (at most 63)")


class EngineManager:
    """Starts, finds, stops and deletes private engine instances under one root directory."""

    def __init__(self, root: Path) -> None:
        """Load the instances recorded under root; their processes are not adopted."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards the dicts and port choice; never held long
        self._owner_locks: dict[str, threading.RLock] = {}
        self._instances: dict[str, _Instance] = {}
        self._reserved: set[int] = set()  # ports chosen by starts still in progress
        for meta in self.root.glob("*/instance.json"):
            with contextlib.suppress(OSError, ValueError, TypeError):
                info = json.loads(meta.read_text())
                inst = _Instance(dir=meta.parent, **{k: info.get(k) for k in _SAVED})
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
    ) -> EngineEndpoint:
        """A running PostgreSQL server for owner, with user and database."""
        if user == PG_ADMIN:
            raise EngineError(f"the user name {PG_ADMIN!r} is reserved by the local cloud")
        return self._ensure(
            "postgres",
            owner,
            password,
            user=user,
            database=database,
            max_connections=max_connections,
        )

    def redis(self, owner: str, *, tls: bool = False) -> EngineEndpoint:
        """A running memory-only Redis server for owner; TLS-only when tls=True."""
        return self._ensure("redis", owner, None, tls=tls)

    def get(self, owner: str) -> EngineEndpoint | None:
        """The owner's endpoint (pid None when not running), without starting anything."""
        inst = self._instances.get(owner)
        return self._endpoint(inst) if inst else None

    def stop(self, owner: str) -> None:
        """Stop the owner's server and keep its data."""
        with self._owner_lock(owner):
            if inst := self._instances.get(owner):
                self._stop(inst)

    def remove(self, owner: str) -> None:
        """Stop the owner's server and delete its data."""
        with self._owner_lock(owner):
            if inst := self._instances.get(owner):
                self._stop(inst)
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
            running = bool(pid and _runs_on(pid, inst.data_dir))  # also a dead daemon's leftover
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
        _check_name("user name", user)
        with self._owner_lock(owner):
            inst = self._instances.get(owner)
            if inst is None or not inst.alive():
                raise EngineError(f"no running engine for {owner}: start it, then change passwords")
            if inst.kind == "redis" or user == PG_ADMIN:
                raise EngineError(f"{owner}: the local cloud manages no password for {user!r}")
            with self._admin_errors(inst, f"changing the password of {user!r}"):
                if inst.kind == "mysql":
                    with self._mysql_admin(inst) as cur:
                        q = "SELECT 1 FROM mysql.user WHERE user=%s AND host='%%'"
                        found = cur.execute(q, (user,))
                        if found:
                            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
                else:
                    from psycopg import sql

                    with self._pg_admin(inst) as conn:
                        q = "SELECT 1 FROM pg_roles WHERE rolname=%s"
                        found = conn.execute(q, (user,)).fetchone() is not None
                        if found:
                            alter = sql.SQL("ALTER ROLE {} PASSWORD {}")
                            conn.execute(alter.format(sql.Identifier(user), sql.Literal(password)))
            if not found:
                raise EngineError(f"there is no user {user!r} on the {inst.kind} server of {owner}")
            if user == inst.user:
                inst.secrets["password"] = password
                self._save(inst)

    # ----- bookkeeping ----------------------------------------------------------------

    def _owner_lock(self, owner: str) -> threading.RLock:
        with self._lock:
            return self._owner_locks.setdefault(owner, threading.RLock())

    def _dir_for(self, owner: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", owner).strip("-")[:40]
        return self.root / f"{slug}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"

    def _save(self, inst: _Instance) -> None:
        info = {k: getattr(inst, k) for k in _SAVED} | {"data_dir": str(inst.data_dir)}
        tmp = inst.dir / "instance.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(inst.dir / "instance.json")  # atomic: `down` may read it at any moment
        if inst.secrets:
            _write_private(inst.dir / "credentials.json", json.dumps(inst.secrets))

    def _endpoint(self, inst: _Instance) -> EngineEndpoint:
        i = inst
        pid = i.proc.pid if i.alive() else None
        ca = i.dir / "ca.pem" if i.tls else None
        pw = i.secrets.get("password")
        return EngineEndpoint(
            i.kind, i.owner, HOST, i.port, i.user, pw, i.database, pid, i.data_dir, ca
        )

    def _ensure(self, kind: str, owner: str, password: str | None, **fields: Any) -> EngineEndpoint:
        _check_name("user name", fields.get("user"))
        _check_name("database name", fields.get("database"))
        with self._owner_lock(owner):
            inst = self._instances.get(owner) or _Instance(kind, owner, self._dir_for(owner))
            if inst.kind != kind:
                raise EngineError(f"{owner} already has a {inst.kind} engine; remove it first")
            # Settings that only take effect at start: restart to apply a change.
            start_only = ("max_connections", "tls") if kind == "postgres" else ("tls",)
            if inst.alive() and any(getattr(inst, k) != fields.get(k, False) for k in start_only):
                self._stop(inst)
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
            self._save(inst)
            return self._endpoint(inst)

    def _pick_port(self, inst: _Instance) -> int:
        """The instance's previous port if still free, else a free port no other instance has."""
        with self._lock:
            others = {i.port for i in self._instances.values() if i is not inst} | self._reserved
            port = inst.port if inst.port not in others and _port_free(inst.port) else 0
            while not port or port in others:
                with socket.socket() as s:
                    s.bind((HOST, 0))
                    port = s.getsockname()[1]
            self._reserved.add(port)
            return port

    # ----- processes ------------------------------------------------------------------

    def _start(self, inst: _Instance) -> None:
        inst.dir.mkdir(parents=True, exist_ok=True)
        inst.dir.chmod(0o711 if self._pg_ids(inst) else 0o700)  # postgres must pass through
        if inst.pid and _runs_on(inst.pid, inst.data_dir):
            _terminate(inst.pid, inst.stop_signal)  # a dead daemon's server holds the data dir
        inst.pid = None
        if not (inst.dir / "initialized").exists():
            shutil.rmtree(inst.data_dir, ignore_errors=True)  # a half-done earlier init
            getattr(self, f"_init_{inst.kind}")(inst)
            (inst.dir / "initialized").touch()
        for attempt in range(3):
            port = inst.port = self._pick_port(inst)
            try:
                return self._launch(inst)
            except EngineError:
                if attempt == 2 or _port_free(port):
                    raise  # not a lost race for the port: the log tail in the error says why
            finally:
                with self._lock:
                    self._reserved.discard(port)

    def _launch(self, inst: _Instance) -> None:
        cmd, probe = getattr(self, f"_cmd_{inst.kind}")(inst)
        started, last = time.monotonic(), ""
        with inst.log.open("a") as log:
            log.write(f"=== {time.strftime('%F %T')} localcloud: {inst.kind} on port {inst.port}\n")
            log.flush()
            try:
                inst.proc = subprocess.Popen(cmd, **self._spawn_args(inst, log))
            except OSError as e:
                raise EngineError(f"cannot run {cmd[0]} for {inst.owner}: {e}") from None
        inst.pid = inst.proc.pid
        self._save(inst)  # record the pid before waiting, so `down` can find a hung start
        while inst.proc.poll() is None:
            try:
                probe()
                return
            except Exception as e:
                last = f"{type(e).__name__}: {e}"[:300]  # connect errors carry no passwords
                if time.monotonic() - started > START_TIMEOUT:
                    break
                time.sleep(0.05)
        code = inst.proc.poll()
        problem = f"exited with code {code}" if code is not None else f"did not answer ({last})"
        self._stop(inst)
        raise EngineError(
            f"the {inst.kind} server for {inst.owner} (port {inst.port}) {problem}. "
            f"End of {inst.log}:\n{_tail(inst.log)}\n"
            "If its data is damaged, delete it (local cloud `reset`) and try again."
        )

    def _stop(self, inst: _Instance) -> None:
        if inst.proc is not None:
            if inst.proc.poll() is None:
                inst.proc.send_signal(inst.stop_signal)
                try:
                    inst.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(inst.proc.pid, signal.SIGKILL)  # with its worker processes
                    inst.proc.wait()
        elif inst.pid and _runs_on(inst.pid, inst.data_dir):
            _terminate(inst.pid, inst.stop_signal)
        inst.proc, inst.pid = None, None
        if inst.dir.exists():
            self._save(inst)

    def _pg_ids(self, inst: _Instance) -> tuple[int, int] | None:
        """The postgres user's uid and gid when PostgreSQL must not run as us (root)."""
        if inst.kind != "postgres" or os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise EngineError(
                "PostgreSQL refuses to run as root and there is no 'postgres' user: install the "
                "postgresql package (it creates that user) or run as a normal user"
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _spawn_args(self, inst: _Instance, log: Any) -> dict[str, Any]:
        """Popen arguments: own session, output to the log, maybe as the postgres user."""
        args = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT}
        args["start_new_session"] = True  # a Ctrl-C in the terminal must not reach servers
        if ids := self._pg_ids(inst):
            # Popen switches user in the child before exec: unlike `runuser`, no wrapper process.
            args |= {"user": ids[0], "group": ids[1], "extra_groups": [], "cwd": inst.data_dir}
        return args

    def _run(self, inst: _Instance, cmd: list[str]) -> None:
        with inst.log.open("a") as log:
            log.write(f"=== {time.strftime('%F %T')} localcloud runs {Path(cmd[0]).name}\n")
            log.flush()
            done = subprocess.run(cmd, timeout=300, **self._spawn_args(inst, log))
        if done.returncode:
            raise EngineError(
                f"{Path(cmd[0]).name} for {inst.owner} failed "
                f"(exit {done.returncode}). End of {inst.log}:\n{_tail(inst.log)}"
            )

    def _argv(self, inst: _Instance, key: str, template: str, **extra: object) -> list[str]:
        """The binary, then the template's words, filled in after splitting (paths have spaces)."""
        if not (path := binaries()[key]):
            raise EngineError(
                f"no {key} server binary: install {', '.join(missing_packages())} "
                "(`python -m helpers.localcloud up` does it when it may)"
            )
        values = {"data": inst.data_dir, "d": inst.dir, "port": inst.port, "host": HOST}
        values |= {"max": inst.max_connections, "me": _os_user()}
        values |= extra
        return [str(path), *(word.format(**values) for word in template.split())]

    @contextlib.contextmanager
    def _admin_errors(self, inst: _Instance, doing: str) -> Iterator[None]:
        try:
            yield
        except EngineError:
            raise
        except Exception as e:  # the driver's message may quote the statement, password included
            raise EngineError(
                f"{doing} on the {inst.kind} server of {inst.owner} failed "
                f"({type(e).__name__}); see {inst.log}"
            ) from None

    def _ensure_account(self, inst: _Instance) -> None:
        user, password, db = inst.user, inst.secrets["password"], inst.database
        with self._admin_errors(inst, f"setting up user {user!r}"):
            if inst.kind == "mysql":
                with self._mysql_admin(inst) as cur:
                    cur.execute(
                        "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password)
                    )
                    cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
                    if db:
                        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")  # name checked
                    cur.execute("SET GLOBAL max_connections = %s", (inst.max_connections,))
                return
            from psycopg import sql

            with self._pg_admin(inst) as conn:
                ident = sql.Identifier(user)
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (user,)).fetchone()
                # As RDS's master user: no superuser, but may create databases and roles, and
                # owns `postgres` (in PostgreSQL 15 only a database's owner may create tables).
                q = "ALTER" if exists else "CREATE"
                q += " ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD {}"
                conn.execute(sql.SQL(q).format(ident, sql.Literal(password)))
                conn.execute(sql.SQL("ALTER DATABASE postgres OWNER TO {}").format(ident))
                q = "SELECT 1 FROM pg_database WHERE datname=%s"
                if db and not conn.execute(q, (db,)).fetchone():
                    q = sql.SQL("CREATE DATABASE {} OWNER {}")
                    conn.execute(q.format(sql.Identifier(db), ident))

    def _socket(self, inst: _Instance, name: str) -> Path:
        path = inst.data_dir / name
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        short = Path("/tmp") / f"localcloud-{os.geteuid()}"  # for a deep state dir
        short.mkdir(mode=0o700, exist_ok=True)
        if short.stat().st_uid != os.geteuid():
            raise EngineError(f"{short} belongs to another user: delete it, or use a shorter path")
        return short / f"{inst.dir.name[-8:]}-{name}"

    # MariaDB: the manager logs in through the socket, authenticated as its OS user: no secret.
    def _init_mysql(self, inst: _Instance) -> None:
        template = "--no-defaults --datadir={data} --skip-test-db" + _MYSQL_SIZES
        template += " --auth-root-authentication-method=socket --auth-root-socket-user={me}"
        if os.geteuid() == 0:
            template += " --user=root"  # else it would try to switch to the `mysql` user
        self._run(inst, self._argv(inst, "mysql_install", template))

    def _cmd_mysql(self, inst: _Instance) -> tuple[list[str], Callable[[], None]]:
        template = (
            "--no-defaults --datadir={data} --socket={sock} --pid-file={data}/mysqld.pid"
            " --port={port} --bind-address={host} --max-connections={max} --skip-log-bin"
            " --skip-name-resolve --character-set-server=utf8mb4 --key-buffer-size=1M"
            " --collation-server=utf8mb4_general_ci --aria-pagecache-buffer-size=1M" + _MYSQL_SIZES
        )
        cmd = self._argv(inst, "mysql", template, sock=self._socket(inst, "mysqld.sock"))
        if os.geteuid() == 0:
            cmd.append("--user=root")  # mariadbd refuses to run as root unless told to

        def probe() -> None:
            with self._mysql_admin(inst):
                pass

        return cmd, probe

    @contextlib.contextmanager
    def _mysql_admin(self, inst: _Instance) -> Iterator[Any]:
        import pymysql

        sock = str(self._socket(inst, "mysqld.sock"))
        # mariadb-install-db lets the installing OS user (root, or the student) in through the
        # socket with unix_socket authentication: root@localhost, or <user>@localhost.
        conn = pymysql.connect(
            unix_socket=sock, user=_os_user(), connect_timeout=2, autocommit=True
        )
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    # PostgreSQL: a generated admin password over TCP, so the socket path never matters.
    def _init_postgres(self, inst: _Instance) -> None:
        if ids := self._pg_ids(inst):
            self._check_reachable(inst.dir, ids)
        inst.data_dir.mkdir(mode=0o700)
        inst.secrets["admin"] = secrets.token_urlsafe(24)
        self._save(inst)
        pwfile = inst.dir / ".pwfile"  # initdb (maybe as postgres) must read it: no pipe
        _write_private(pwfile, inst.secrets["admin"] + "\n")
        if ids:
            os.chown(inst.data_dir, *ids)
            os.chown(pwfile, *ids)
        try:
            template = "-D {data} -U {admin} --auth=scram-sha-256 --pwfile={d}/.pwfile -E UTF8"
            template += " --locale=C --no-sync"  # no fsync: a fresh cluster is cheap to redo
            self._run(inst, self._argv(inst, "initdb", template, admin=PG_ADMIN))
        finally:
            pwfile.unlink(missing_ok=True)

    def _check_reachable(self, path: Path, ids: tuple[int, int]) -> None:
        groups = set(os.getgrouplist("postgres", ids[1]))
        for d in [path, *path.parents]:
            st = d.stat()
            bit = 0o100 if st.st_uid == ids[0] else 0o010 if st.st_gid in groups else 0o001
            if not st.st_mode & bit:
                raise EngineError(
                    f"PostgreSQL must run as the 'postgres' user (it refuses root), and that user "
                    f"cannot enter {d}: run `chmod o+x {d}`, or set LOCALCLOUD_STATE_DIR to a "
                    "directory it can reach (for example under /var/tmp)."
                )

    def _cmd_postgres(self, inst: _Instance) -> tuple[list[str], Callable[[], None]]:
        short = len(str(inst.data_dir)) + 16 <= _MAX_SOCKET_PATH  # else no socket at all
        # log_min_error_statement=panic: a failed ALTER ROLE must not log its password.
        template = "-D {data} -p {port} -k {sockdir} -c listen_addresses={host}"
        template += " -c max_connections={max} -c shared_buffers=32MB"
        template += " -c log_min_error_statement=panic"
        cmd = self._argv(inst, "postgres", template, sockdir=inst.data_dir if short else "")
        return cmd, lambda: self._pg_admin(inst).close()

    def _pg_admin(self, inst: _Instance) -> Any:
        import psycopg

        admin = {"user": PG_ADMIN, "password": inst.secrets["admin"], "dbname": "postgres"}
        return psycopg.connect(
            host=HOST, port=inst.port, connect_timeout=2, autocommit=True, **admin
        )

    # Redis: memory-only, as a cache; TLS with a private CA, as ElastiCache Serverless requires.
    def _init_redis(self, inst: _Instance) -> None:
        inst.data_dir.mkdir(mode=0o700, exist_ok=True)

    def _cmd_redis(self, inst: _Instance) -> tuple[list[str], Callable[[], None]]:
        import redis

        # --set-proc-title no keeps argv (and so --dir) in /proc/<pid>/cmdline for kill_leftovers.
        template = "--bind {host} --save {empty} --appendonly no --dir {data} --daemonize no"
        template += " --set-proc-title no"
        if inst.tls:
            _make_tls(inst.dir, inst.owner)
            template += " --port 0 --tls-port {port} --tls-auth-clients no"
            template += " --tls-ca-cert-file {d}/ca.pem --tls-cert-file {d}/server.pem"
            template += " --tls-key-file {d}/server.key"
        else:
            template += " --port {port}"
        cmd = self._argv(inst, "redis", template, empty="")
        ca = inst.dir / "ca.pem"

        def probe() -> None:
            tls = {"ssl": True, "ssl_ca_certs": str(ca)} if inst.tls else {}
            with redis.Redis(host=HOST, port=inst.port, socket_timeout=2, **tls) as client:
                client.ping()

        return cmd, probe


def _make_tls(directory: Path, owner: str) -> None:
    """A private CA and a server certificate for 127.0.0.1 and localhost, made once."""
    if (directory / "server.key").exists():
        return
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(
        name: str, key: Any, issuer: x509.Name | None, signer: Any
    ) -> x509.CertificateBuilder:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    ca = (
        issue(f"localcloud CA for {owner}"[:64], ca_key, None, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    server = (
        issue("localhost", key, ca.subject, ca_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem))
    private = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(directory / "server.key", private.decode())
