"""RDS Proxy's cost and its pooling: a query through the proxy against one straight to the
database, connection set-up (TLS and authentication), and 1,000 concurrent clients.

One Aurora cluster (4 ACU at most) and one proxy run on the local cloud; pymysql is the
client, as in the course's handlers. The proxy runs inside the daemon, so its memory is the
daemon's resident memory before and during the 1,000-client run.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from typing import Any

import psutil
import pymysql

from .aurora import bench_cluster
from .timing import timings, until

CLIENTS, QUERIES = 1000, 10
POOL_PERCENT = 50  # of max_connections: the rest leaves room for the benchmark's own look-ups


def _setup(lab: Any) -> dict[str, Any]:
    """A cluster with a table of 1,000 rows, a proxy in front of it, its target healthy."""
    rds = lab.client("rds")
    cluster = bench_cluster(lab, "bench-proxy")
    master = json.loads(
        lab.client("secretsmanager").get_secret_value(
            SecretId=cluster["MasterUserSecret"]["SecretArn"]
        )["SecretString"]
    )
    # The proxy logs in as a user of its own, so the cluster's connections of that user are
    # exactly the proxy's (the master user is also the local capacity model's).
    secret = {"username": "bench_app", "password": "bench-app-password-1"}
    secret_arn = lab.client("secretsmanager").create_secret(
        Name="bench-proxy-app", SecretString=json.dumps(secret)
    )["ARN"]
    cluster = rds.describe_db_clusters(DBClusterIdentifier="bench-proxy")["DBClusters"][0]
    admin = {"host": cluster["Endpoint"], "port": cluster["Port"], "user": master["username"]}
    connection = pymysql.connect(**admin, password=master["password"], autocommit=True)
    with connection, connection.cursor() as cursor:
        cursor.execute("CREATE USER 'bench_app'@'%%' IDENTIFIED BY %s", (secret["password"],))
        cursor.execute("GRANT ALL ON bench.* TO 'bench_app'@'%'")
    role = lab.client("iam").create_role(
        RoleName="bench-proxy",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "rds.amazonaws.com"},
                    }
                ],
            }
        ),
    )["Role"]
    subnets = [s["SubnetId"] for s in lab.client("ec2").describe_subnets()["Subnets"]][:2]
    rds.create_db_proxy(
        DBProxyName="bench-proxy",
        EngineFamily="MYSQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret_arn, "IAMAuth": "DISABLED"}],
        RoleArn=role["Arn"],
        VpcSubnetIds=subnets,
    )
    until(
        lambda: (
            rds.describe_db_proxies(DBProxyName="bench-proxy")["DBProxies"][0]["Status"]
            == "available"
        ),
        60,
        "the proxy",
    )
    rds.register_db_proxy_targets(DBProxyName="bench-proxy", DBClusterIdentifiers=["bench-proxy"])

    def healthy() -> bool:
        targets = rds.describe_db_proxy_targets(DBProxyName="bench-proxy")["Targets"]
        return any(t.get("TargetHealth", {}).get("State") == "AVAILABLE" for t in targets)

    until(healthy, 60, "the proxy's target")
    rds.modify_db_proxy_target_group(
        DBProxyName="bench-proxy",
        TargetGroupName="default",
        ConnectionPoolConfig={"MaxConnectionsPercent": POOL_PERCENT},
    )
    cluster = rds.describe_db_clusters(DBClusterIdentifier="bench-proxy")["DBClusters"][0]
    proxy = rds.describe_db_proxies(DBProxyName="bench-proxy")["DBProxies"][0]
    login = {"user": secret["username"], "password": secret["password"], "database": "bench"}
    direct = {"host": cluster["Endpoint"], "port": cluster["Port"], **login}
    with pymysql.connect(**direct, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)")
        cursor.executemany(
            "INSERT INTO items VALUES (%s, %s)", [(n, f"item-{n}") for n in range(1000)]
        )
    return {"direct": direct, "proxy": {"host": proxy["Endpoint"], "port": 3306, **login}}


def _database_connections(connection: Any, user: str) -> int:
    """Connections of the proxy's user on the cluster, the asking one not counted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            "WHERE USER = %s AND ID <> CONNECTION_ID()",
            (user,),
        )
        return int(cursor.fetchone()[0])


def bench_rds_proxy(lab: Any) -> dict[str, Any]:
    """The figures of issue 12's benchmark list."""
    from localcloud import daemon
    from localcloud.certificates import ca_bundle
    from localcloud.config import state_dir

    info = daemon.running()
    assert info is not None, "the benchmark's daemon is not running"
    ca_file = str(ca_bundle(state_dir()))
    where = _setup(lab)
    plain = {"ssl_disabled": True, "autocommit": True}
    results: dict[str, Any] = {}
    for name, target in (("direct", where["direct"]), ("proxy", where["proxy"])):
        connection = pymysql.connect(**target, **plain)
        cursor = connection.cursor()

        def select(cursor: Any = cursor) -> None:
            cursor.execute("SELECT id, name FROM items WHERE id = %s", (42,))
            cursor.fetchall()

        results[f"select_{name}"] = timings(select, 2000, warmup=50)
        connection.close()
    results["added_p50_ms"] = round(
        results["select_proxy"]["median_ms"] - results["select_direct"]["median_ms"], 3
    )
    tls = ssl.create_default_context(cafile=ca_file)
    results["connect_proxy_tls"] = timings(
        lambda: pymysql.connect(**where["proxy"], ssl=tls).close(), 200
    )
    results["connect_proxy_plain"] = timings(
        lambda: pymysql.connect(**where["proxy"], ssl_disabled=True).close(), 200
    )
    results["connect_direct"] = timings(lambda: pymysql.connect(**where["direct"]).close(), 200)
    results["storm"] = _storm(where, psutil.Process(info.pid))
    return results


def _storm(where: dict[str, Any], daemon: psutil.Process) -> dict[str, Any]:
    """1,000 clients connected at once through the proxy, each running 10 queries."""
    errors: list[str] = []
    errors_lock = threading.Lock()
    connected = threading.Barrier(CLIENTS + 1, timeout=300)
    finished = threading.Barrier(CLIENTS + 1, timeout=300)
    rss_before = daemon.memory_info().rss
    looking = pymysql.connect(**where["direct"], autocommit=True)

    def client(number: int) -> None:
        connection = None
        try:
            connection = pymysql.connect(**where["proxy"], ssl_disabled=True, autocommit=True)
        except pymysql.MySQLError as error:
            with errors_lock:
                errors.append(f"connect: {error}")
        try:
            connected.wait()
            if connection is not None:
                with connection.cursor() as cursor:
                    for query in range(QUERIES):
                        cursor.execute(
                            "SELECT id, name FROM items WHERE id = %s", ((number + query) % 1000,)
                        )
                        cursor.fetchall()
        except pymysql.MySQLError as error:
            with errors_lock:
                errors.append(f"query: {error}")
        finally:
            finished.wait()
            if connection is not None:
                connection.close()

    threads = [
        threading.Thread(target=client, args=(n,), daemon=True, name=f"bench-client-{n}")
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    connected.wait()  # all 1,000 are connected (or failed): the queries start now
    started = time.perf_counter()
    most, rss_peak, stop = [0], [rss_before], threading.Event()

    def watch() -> None:
        with looking:  # one connection for every look: closed ones linger in the list
            while not stop.is_set():
                with contextlib.suppress(pymysql.MySQLError):
                    counted = _database_connections(looking, where["direct"]["user"])
                    most[0] = max(most[0], counted)
                rss_peak[0] = max(rss_peak[0], daemon.memory_info().rss)
                stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    finished.wait()  # every client ran its queries, still connected
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    for thread in threads:
        thread.join()
    with pymysql.connect(**where["direct"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        max_connections = int(cursor.fetchone()[0])
    return {
        "clients": CLIENTS,
        "queries_each": QUERIES,
        "errors": len(errors),
        "first_errors": errors[:3],
        "database_connections_max": most[0],
        "pool_limit": max_connections * POOL_PERCENT // 100,
        "wall_s": round(wall, 2),
        "daemon_rss_before_mib": round(rss_before / 2**20, 1),
        "daemon_rss_with_clients_mib": round(rss_peak[0] / 2**20, 1),
    }
