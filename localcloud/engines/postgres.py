"""PostgreSQL: initialise, start and administer it with a generated admin password over TCP."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    cmd = command_line(inst, "postgres", template, sockdir=inst.data_dir if short else "")
    return cmd, lambda: admin(inst).close()


def admin(inst: EngineInstance) -> Any:
    import psycopg

    login = {"user": PG_ADMIN, "password": inst.secrets["admin"], "dbname": "postgres"}
    return psycopg.connect(host=HOST, port=inst.port, connect_timeout=2, autocommit=True, **login)


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
