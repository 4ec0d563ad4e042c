"""The engine manager starts real MariaDB, PostgreSQL and Redis servers, privately."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pymysql
import pytest
import redis

import localcloud.engines as engines
from localcloud.engines import (
    EngineError,
    EngineManager,
    common,
    install,
    kill_leftovers,
    processes,
)

pytestmark = pytest.mark.engines
HOST = "127.0.0.1"


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on port, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add("ipv6:" + address)
    return found


def test_engine_packages_are_installed():
    assert engines.missing_packages() == []
    engines.install_missing()  # nothing to do: returns at once, needs no root


def test_mysql_lifecycle(manager):
    owner = "rds:cluster/test-aurora"
    ep = manager.mysql(owner, user="admin", password="first-pw", database="app", max_connections=20)
    assert (ep.kind, ep.host, ep.user, ep.database) == ("mysql", HOST, "admin", "app")
    assert "first-pw" not in repr(ep)
    assert listening_addresses(ep.port) == {HOST}

    def connect(password: str) -> pymysql.Connection:
        return pymysql.connect(
            host=HOST, port=ep.port, user="admin", password=password, database="app"
        )

    with connect("first-pw") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.execute("INSERT INTO items VALUES (1, 'widget')")
        conn.commit()
        cur.execute("SELECT name FROM items WHERE id = 1")
        assert cur.fetchone() == ("widget",)
        cur.execute("SELECT @@max_connections, @@character_set_server, @@tmpdir")
        # A temporary directory of its own: servers that share /tmp can break each other.
        assert cur.fetchone() == (20, "utf8mb4", str(ep.data_dir.parent / "tmp"))

    again = manager.mysql(owner, user="admin", password="first-pw", database="app")
    assert (again.port, again.pid) == (ep.port, ep.pid)

    manager.set_password(owner, "admin", "second-pw")
    assert manager.get(owner).password == "second-pw"
    with pytest.raises(EngineError, match="no user 'nobody'"):
        manager.set_password(owner, "nobody", "pw")
    with pytest.raises(pymysql.err.OperationalError):
        connect("first-pw")
    connect("second-pw").close()

    manager.stop(owner)
    assert refused(ep.port)
    assert manager.get(owner).pid is None

    back = manager.mysql(owner, user="admin", password="second-pw", database="app")
    assert back.port == ep.port  # kept, as it was free
    with connect("second-pw") as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM items")
        assert cur.fetchall() == (("widget",),)

    manager.remove(owner)
    assert not ep.data_dir.exists()
    assert manager.get(owner) is None
    assert refused(ep.port)


def test_postgres_lifecycle(manager):
    psycopg = pytest.importorskip("psycopg")
    owner = "rds:db/test-postgres"
    ep = manager.postgres(owner, user="postgres", password="first-pw", database="app")
    assert listening_addresses(ep.port) == {HOST}

    def connect(password: str, dbname: str = "app"):
        return psycopg.connect(
            host=HOST, port=ep.port, user="postgres", password=password, dbname=dbname
        )

    with connect("first-pw") as conn:
        conn.execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO items VALUES (1, 'widget')")
        assert conn.execute("SELECT name FROM items").fetchone() == ("widget",)
    with connect("first-pw", "postgres") as conn:  # the master user owns `postgres` too
        conn.execute("CREATE TABLE notes (id INT)")

    assert manager.postgres(owner, user="postgres", password="first-pw").port == ep.port

    manager.set_password(owner, "postgres", "second-pw")
    with pytest.raises(psycopg.OperationalError):
        connect("first-pw")
    connect("second-pw").close()

    manager.stop(owner)
    assert refused(ep.port)
    back = manager.postgres(owner, user="postgres", password="second-pw", database="app")
    with connect("second-pw") as conn:
        assert conn.execute("SELECT name FROM items").fetchone() == ("widget",)

    manager.remove(owner)
    assert not ep.data_dir.exists()
    assert refused(back.port)


def test_redis_plain_lifecycle(manager):
    ep = manager.redis("elasticache:plain")
    assert (ep.user, ep.password, ep.tls_ca_file) == (None, None, None)
    assert listening_addresses(ep.port) == {HOST}
    assert os.getsid(ep.pid) == ep.pid  # its own session: a Ctrl-C in our terminal misses it
    with redis.Redis(host=HOST, port=ep.port) as client:
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
    assert manager.redis("elasticache:plain").port == ep.port

    manager.stop("elasticache:plain")
    assert refused(ep.port)
    back = manager.redis("elasticache:plain")
    with redis.Redis(host=HOST, port=back.port) as client:
        assert client.get("greeting") is None  # memory-only, as a cache: a restart empties it

    manager.remove("elasticache:plain")
    assert not ep.data_dir.exists()


def test_redis_tls(manager):
    ep = manager.redis("elasticache:tls", tls=True)
    assert ep.tls_ca_file.exists()
    assert listening_addresses(ep.port) == {HOST}
    with redis.Redis(host=HOST, port=ep.port, ssl=True, ssl_ca_certs=str(ep.tls_ca_file)) as c:
        c.set("k", "v")
        assert c.get("k") == b"v"
    with pytest.raises(redis.ConnectionError), redis.Redis(host=HOST, port=ep.port) as plain:
        plain.ping()  # TLS only, as on ElastiCache Serverless
    manager.stop("elasticache:tls")
    again = manager.redis("elasticache:tls", tls=True)
    with redis.Redis(host=HOST, port=again.port, ssl=True, ssl_ca_certs=str(ep.tls_ca_file)) as c:
        assert c.ping()


def test_postgres_tls_required_on_its_own_address(manager):
    psycopg = pytest.importorskip("psycopg")
    host = "127.0.8.254"  # an address of its own, as an RDS instance has
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    ep = manager.postgres(
        "rds:db/tls",
        user="master",
        password="pw-12345678",
        database="app",
        tls=True,
        require_tls=True,
        host=host,
        port=port,
        hostnames=("tls.example.internal",),
    )
    assert (ep.host, ep.port) == (host, port)
    assert listening_addresses(port) == {host}
    login = {"host": host, "port": port, "user": "master", "password": "pw-12345678"}
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(**login, dbname="app", sslmode="disable").close()
    verified = {"sslmode": "verify-full", "sslrootcert": str(ep.tls_ca_file)}
    with psycopg.connect(**login, dbname="app", **verified) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert conn.execute("SHOW ssl").fetchone() == ("on",)
    by_name = login | {"host": "tls.example.internal", "hostaddr": host}
    psycopg.connect(**by_name, dbname="app", **verified).close()  # the name is in the certificate

    # A plain server again: the TLS settings are start-only, so the server restarts without them.
    plain = manager.postgres("rds:db/tls", user="master", password="pw-12345678", database="app")
    psycopg.connect(
        **login | {"host": HOST, "port": plain.port}, dbname="app", sslmode="disable"
    ).close()


def test_concurrent_starts_share_one_instance_per_owner(manager):
    results: dict[str, list[int]] = {"a": [], "b": []}

    def start(owner: str) -> None:
        results[owner].append(manager.redis(owner).port)

    threads = [threading.Thread(target=start, args=(o,)) for o in ("a", "b", "a", "b", "a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(results["a"])) == 1 and len(set(results["b"])) == 1
    assert results["a"][0] != results["b"][0]
    assert {row["owner"] for row in manager.list() if row["running"]} == {"a", "b"}


def test_kill_leftovers_kills_orphans_only(root):
    dead_daemon = EngineManager(root)
    orphan = dead_daemon.redis("orphan")  # the daemon "dies" without stopping it
    # An unrelated process recorded in an instance file: its cmdline does not name the data dir.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        fake = root / "fake-00000000"
        (fake / "data").mkdir(parents=True)
        (fake / "instance.json").write_text(json.dumps({"kind": "redis", "pid": bystander.pid}))

        assert kill_leftovers(root) == [orphan.pid]
        assert refused(orphan.port)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()

    # A new daemon on the same root restarts the owner with its old port if free.
    assert EngineManager(root).redis("orphan").port == orphan.port


def test_a_new_manager_replaces_a_dead_daemons_server(root):
    first = EngineManager(root).redis("survivor")
    second = EngineManager(root)
    assert second.list()[0]["running"]  # `status` sees the leftover
    ep = second.redis("survivor")
    assert ep.pid != first.pid
    assert not processes.runs_on(first.pid, first.data_dir)
    second.wipe()
    assert list(root.iterdir()) == []


def test_errors_say_what_is_wrong(manager, monkeypatch):
    with pytest.raises(EngineError, match="invalid user name"):
        manager.mysql("x", user="bad name", password="pw")
    with pytest.raises(EngineError, match="reserved"):
        manager.postgres("x", user=engines.PG_ADMIN, password="pw")
    with pytest.raises(EngineError, match="no running engine"):
        manager.set_password("nobody", "admin", "pw")

    manager.redis("cache")
    with pytest.raises(EngineError, match="already has a redis engine"):
        manager.mysql("cache", user="admin", password="pw")

    found = engines.binaries()
    monkeypatch.setattr(install, "binaries", lambda: {**found, "redis": Path("/bin/false")})
    with pytest.raises(EngineError, match=r"exited with code 1\. End of .*server\.log"):
        manager.redis("broken")


def test_two_local_clouds_never_share_a_servers_socket(tmp_path):
    # Deep state directories push the socket to /tmp; an owner of the same name in two of
    # them (two daemons running the same notebook) must still get a socket each.
    deep = [tmp_path / name / ("d" * 60) / "engines" / "abcdef0123456789" for name in "ab"]
    paths = [
        common.socket_path(common.EngineInstance("mysql", "rds:cluster/x", d), "mysqld.sock")
        for d in deep
    ]
    assert paths[0] != paths[1]
    assert all(len(str(path)) <= common.MAX_SOCKET_PATH for path in paths)
    short = common.EngineInstance("mysql", "o", tmp_path / "e")
    assert common.socket_path(short, "mysqld.sock") == tmp_path / "e" / "data" / "mysqld.sock"
