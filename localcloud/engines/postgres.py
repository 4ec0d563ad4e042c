"""PostgreSQL: initialise, start and administer it with a generated admin password over TCP.

With tls=True the server has ssl=on with a certificate from the local cloud's CA naming its
address (and `hostnames`); with require_tls=True too, pg_hba.conf has only `hostssl` lines, so
a client without TLS gets PostgreSQL's own "no pg_hba.conf entry ... no encryption", as on RDS
with rds.force_ssl=1. The manager's own connections then use TLS as well.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..certificates import server_certificate
from ..config import HOST
from .common import (
    MAX_SOCKET_PATH,
    PG_ADMIN,
    EngineError,
    EngineInstance,
    save_instance,
    write_private,
)
from .processes import command_line, postgres_ids, run_setup


# A generated admin password over TCP, so the socket path never matters.
def init(inst: EngineInstance) -> None:
    if ids := postgres_ids(inst):
        _check_reachable(inst.dir, ids)
    inst.data_dir.mkdir(mode=0o700)
    inst.secrets["admin"] = secrets.token_urlsafe(24)
    save_instance(inst)
    pwfile = inst.dir / ".pwfile"  # initdb (maybe as postgres) must read it: no pipe
    write_private(pwfile, inst.secrets["admin"] + "\n")
    if ids:
        os.chown(inst.data_dir, *ids)
        os.chown(pwfile, *ids)
    try:
        template = "-D {data} -U {admin} --auth=scram-sha-256 --pwfile={d}/.pwfile -E UTF8"
        template += " --locale=C --no-sync"  # no fsync: a fresh cluster is cheap to redo
        run_setup(inst, command_line(inst, "initdb", template, admin=PG_ADMIN))
    finally:
        pwfile.unlink(missing_ok=True)


def _check_reachable(path: Path, ids: tuple[int, int]) -> None:
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


def command(inst: EngineInstance) -> tuple[list[str], Callable[[], None]]:
    short = len(str(inst.data_dir)) + 16 <= MAX_SOCKET_PATH  # else no socket at all
    # log_min_error_statement=panic: a failed ALTER ROLE must not log its password.
    template = "-D {data} -p {port} -k {sockdir} -c listen_addresses={host}"
    template += " -c max_connections={max} -c shared_buffers=32MB"
    template += " -c log_min_error_statement=panic"
    extra: dict[str, object] = {"sockdir": inst.data_dir if short else "", "host": _host(inst)}
    if inst.tls:
        template += " -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={keyfile}"
        extra |= dict(zip(("cert", "keyfile"), _install_certificate(inst), strict=True))
    if inst.tls or inst.host:
        template += " -c hba_file={hba}"
        extra["hba"] = _write_hba(inst)
    cmd = command_line(inst, "postgres", template, **extra)
    return cmd, lambda: admin(inst).close()


def _host(inst: EngineInstance) -> str:
    return inst.host or HOST


def _install_certificate(inst: EngineInstance) -> tuple[Path, Path]:
    """Copy the CA-issued certificate and key into the data dir, readable by the server only.

    The CA's folder is private to the local cloud, and PostgreSQL refuses a key that others
    may read; as root the server runs as `postgres`, which must own its copy.
    """
    state = inst.dir.parent.parent  # <state>/engines/<instance>: the CA is the state's
    names = [*inst.hostnames, "localhost"]
    cert, key = server_certificate(state, f"postgres-{inst.dir.name}", names, [_host(inst)])
    copies = inst.data_dir / "server.crt", inst.data_dir / "server.key"
    ids = postgres_ids(inst)
    for source, target in zip((cert, key), copies, strict=True):
        write_private(target, source.read_text())
        if ids:
            os.chown(target, *ids)
    return copies


def _write_hba(inst: EngineInstance) -> Path:
    """Who may connect over TCP: loopback clients with a password, and with TLS if required."""
    kind = "hostssl" if inst.require_tls else "host"
    lines = [
        "# written by the local cloud at each start",
        "local all all scram-sha-256",
        f"{kind} all all 127.0.0.0/8 scram-sha-256",
    ]
    path = inst.data_dir / "localcloud_hba.conf"
    write_private(path, "\n".join(lines) + "\n")
    if ids := postgres_ids(inst):
        os.chown(path, *ids)
    return path


def admin(inst: EngineInstance) -> Any:
    import psycopg

    login = {"user": PG_ADMIN, "password": inst.secrets["admin"], "dbname": "postgres"}
    # The manager only needs encryption, not the certificate check: it is its own server.
    tls = {"sslmode": "require"} if inst.require_tls else {}
    address = {"host": _host(inst), "port": inst.port, "connect_timeout": 2}
    return psycopg.connect(autocommit=True, **address, **login, **tls)


def ensure_account(inst: EngineInstance, password: str) -> None:
    """Create or update the owner's role, as RDS's master user, and its database."""
    from psycopg import sql

    user, db = inst.user, inst.database
    with admin(inst) as conn:
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


def set_password(inst: EngineInstance, user: str, password: str) -> bool:
    """Change user's password; False if there is no such role."""
    from psycopg import sql

    with admin(inst) as conn:
        q = "SELECT 1 FROM pg_roles WHERE rolname=%s"
        found = conn.execute(q, (user,)).fetchone() is not None
        if found:
            alter = sql.SQL("ALTER ROLE {} PASSWORD {}")
            conn.execute(alter.format(sql.Identifier(user), sql.Literal(password)))
    return found
