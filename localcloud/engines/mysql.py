"""MariaDB, the MySQL-compatible engine: initialise, start, and administer it through its socket."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from .common import EngineInstance, os_user, socket_path
from .processes import command_line, run_setup

# Small caches so that many small clusters fit (about 55 MB RSS and 34 MB of disk each).
_MYSQL_SIZES = " --innodb-buffer-pool-size=8M --innodb-log-file-size=4M"
# A temporary directory of the instance's own: mariadb-install-db runs that share /tmp can
# fail ("Unknown table 'mysql.tmp_user_sys'"; seen with 8 at once, 2 failed in 1 of 3 rounds).
_MYSQL_TMPDIR = " --tmpdir={d}/tmp"


# The manager logs in through the socket, authenticated as its OS user: no secret.
def init(inst: EngineInstance) -> None:
    (inst.dir / "tmp").mkdir(exist_ok=True)
    template = "--no-defaults --datadir={data} --skip-test-db" + _MYSQL_SIZES + _MYSQL_TMPDIR
    template += " --auth-root-authentication-method=socket --auth-root-socket-user={me}"
    if os.geteuid() == 0:
        template += " --user=root"  # else it would try to switch to the `mysql` user
    run_setup(inst, command_line(inst, "mysql_install", template))


def command(inst: EngineInstance) -> tuple[list[str], Callable[[], None]]:
    (inst.dir / "tmp").mkdir(exist_ok=True)  # an instance made before it had one
    template = (
        "--no-defaults --datadir={data} --socket={sock} --pid-file={data}/mysqld.pid"
        " --port={port} --bind-address={host} --max-connections={max} --skip-log-bin"
        " --skip-name-resolve --character-set-server=utf8mb4 --key-buffer-size=1M"
        " --collation-server=utf8mb4_general_ci --aria-pagecache-buffer-size=1M"
        + _MYSQL_SIZES
        + _MYSQL_TMPDIR
    )
    cmd = command_line(inst, "mysql", template, sock=socket_path(inst, "mysqld.sock"))
    if os.geteuid() == 0:
        cmd.append("--user=root")  # mariadbd refuses to run as root unless told to

    def probe() -> None:
        with admin(inst):
            pass

    return cmd, probe


@contextlib.contextmanager
def admin(inst: EngineInstance) -> Iterator[Any]:
    import pymysql

    sock = str(socket_path(inst, "mysqld.sock"))
    # mariadb-install-db lets the installing OS user (root, or the student) in through the
    # socket with unix_socket authentication: root@localhost, or <user>@localhost.
    conn = pymysql.connect(unix_socket=sock, user=os_user(), connect_timeout=2, autocommit=True)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def ensure_account(inst: EngineInstance, password: str) -> None:
    """Create or update the owner's user with all privileges, and its database."""
    user, db = inst.user, inst.database
    with admin(inst) as cur:
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
        if db:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")  # name checked
        cur.execute("SET GLOBAL max_connections = %s", (inst.max_connections,))


def set_password(inst: EngineInstance, user: str, password: str) -> bool:
    """Change user's password; False if there is no such user."""
    with admin(inst) as cur:
        q = "SELECT 1 FROM mysql.user WHERE user=%s AND host='%%'"
        found = cur.execute(q, (user,))
        if found:
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
    return bool(found)
