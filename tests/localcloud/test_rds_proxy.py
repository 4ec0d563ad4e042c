"""RDS Proxy against the session's daemon: control plane, authentication, TLS and pooling.

One Aurora cluster and one proxy serve the module; tests that change the proxy's settings
put them back. pymysql is the client, as in the course's handlers.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pymysql
import pytest
from botocore.exceptions import ClientError
from live_fixtures import AuroraClusters, unique
from polling import wait_until

import helpers
from localcloud.certificates import ca_bundle
from localcloud.config import state_dir

PROXY_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "rds.amazonaws.com"},
        }
    ],
}


class Proxy:
    """A proxy in front of a cluster, and ways to connect to it."""

    def __init__(self, lab: helpers.Lab, cluster: dict[str, Any], name: str, role: str) -> None:
        self.lab, self.rds = lab, lab.client("rds")
        self.cluster, self.name, self.role = cluster, name, role
        secrets = lab.client("secretsmanager")
        master_secret = cluster["MasterUserSecret"]["SecretArn"]
        master = json.loads(secrets.get_secret_value(SecretId=master_secret)["SecretString"])
        self.master = (master["username"], master["password"])
        # The proxy logs in as an application user, so the cluster's connections of that user
        # are exactly the proxy's (the master user is also the capacity model's).
        self.user, self.password = "pytest_app", "pytest-app-password-1"
        with self.direct() as connection, connection.cursor() as cursor:
            cursor.execute("CREATE USER 'pytest_app'@'%%' IDENTIFIED BY %s", (self.password,))
            cursor.execute("GRANT ALL ON labdb.* TO 'pytest_app'@'%'")
        self.secret_arn = secrets.create_secret(
            Name=unique("pytest-proxy-app"),
            SecretString=json.dumps({"username": self.user, "password": self.password}),
        )["ARN"]
        self.host = ""

    def describe(self) -> dict[str, Any]:
        return self.rds.describe_db_proxies(DBProxyName=self.name)["DBProxies"][0]

    def connect(self, password: str | None = None, tls: bool = False, **options: Any) -> Any:
        """A pymysql connection through the proxy (TLS verified against the local CA)."""
        if tls:
            context = ssl.create_default_context(cafile=str(ca_bundle(state_dir())))
            options["ssl"] = context
        else:  # pymysql's default would use TLS whenever the server offers it
            options["ssl_disabled"] = True
        return pymysql.connect(
            host=self.host,
            port=3306,
            user=options.pop("user", self.user),
            password=self.password if password is None else password,
            database=options.pop("database", "labdb"),
            connect_timeout=10,
            **options,
        )

    def direct(self) -> Any:
        """A connection straight to the cluster's server."""
        return pymysql.connect(
            host=self.cluster["Endpoint"],
            port=self.cluster["Port"],
            user=self.master[0],
            password=self.master[1],
            database="labdb",
            autocommit=True,
        )

    def pool(self, **config: Any) -> None:
        self.rds.modify_db_proxy_target_group(
            DBProxyName=self.name, TargetGroupName="default", ConnectionPoolConfig=config
        )

    def proxy_threads(self) -> int:
        """The cluster's connections that the proxy opened (all but this query's own)."""
        with self.direct() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE USER = %s AND ID <> CONNECTION_ID()",
                (self.user,),
            )
            return int(cursor.fetchone()[0])


@pytest.fixture(scope="module")
def proxy(module_lab: helpers.Lab) -> Iterator[Proxy]:
    """An available proxy with the cluster registered and healthy."""
    clusters = AuroraClusters(module_lab.client("rds"))
    cluster = clusters.create("proxy")
    iam = module_lab.client("iam")
    role = iam.create_role(
        RoleName=unique("pytest-proxy-role"), AssumeRolePolicyDocument=json.dumps(PROXY_TRUST)
    )["Role"]
    subnets = [s["SubnetId"] for s in module_lab.client("ec2").describe_subnets()["Subnets"]][:2]
    name = unique("pytest-proxy")
    rds = module_lab.client("rds")
    found = Proxy(module_lab, cluster, name, role["Arn"])
    created = rds.create_db_proxy(
        DBProxyName=name,
        EngineFamily="MYSQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": found.secret_arn, "IAMAuth": "DISABLED"}],
        RoleArn=role["Arn"],
        VpcSubnetIds=subnets,
    )["DBProxy"]
    assert created["Status"] == "creating"
    wait_until(lambda: found.describe()["Status"] == "available", what="proxy available")
    rds.register_db_proxy_targets(
        DBProxyName=name, DBClusterIdentifiers=[cluster["DBClusterIdentifier"]]
    )

    def healthy() -> bool:
        targets = rds.describe_db_proxy_targets(DBProxyName=name)["Targets"]
        return any(t.get("TargetHealth", {}).get("State") == "AVAILABLE" for t in targets)

    wait_until(healthy, what="target AVAILABLE")
    found.host = found.describe()["Endpoint"]
    yield found
    with contextlib.suppress(ClientError):
        rds.delete_db_proxy(DBProxyName=name)
    clusters.delete_all()
    with contextlib.suppress(ClientError):
        iam.delete_role(RoleName=role["RoleName"])
    module_lab.client("secretsmanager").delete_secret(
        SecretId=found.secret_arn, ForceDeleteWithoutRecovery=True
    )


def _select_one(connection: Any, sql: str = "SELECT 1") -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def test_a_proxy_authenticates_and_forwards(proxy: Proxy):
    assert proxy.host.startswith("127.") and proxy.host != "127.0.0.1"
    with proxy.connect(autocommit=True) as connection:
        assert _select_one(connection, "SELECT DATABASE(), 41 + 1") == ("labdb", 42)


def _error_of(call: Any) -> tuple[int, str]:
    """(errno, message) of the pymysql error `call()` raises."""
    with pytest.raises(pymysql.MySQLError) as raised:
        call()
    return raised.value.args[0], raised.value.args[1]


@contextlib.contextmanager
def _single_connection_pool(proxy: Proxy, **extra: Any) -> Iterator[None]:
    """The pool limited to one database connection and a 1 s borrow timeout, then restored."""
    with proxy.direct() as connection:
        most = int(_select_one(connection, "SELECT @@max_connections")[0])
    assert most < 200, "1 percent must allow exactly one connection"
    proxy.pool(MaxConnectionsPercent=1, MaxIdleConnectionsPercent=1, ConnectionBorrowTimeout=1,
               **extra)  # fmt: skip
    try:
        yield
    finally:
        proxy.pool(MaxConnectionsPercent=100, MaxIdleConnectionsPercent=50,
                   ConnectionBorrowTimeout=120, SessionPinningFilters=[])  # fmt: skip


def test_control_plane_shapes_and_errors(proxy: Proxy):
    rds = proxy.rds
    described = proxy.describe()
    assert described["Status"] == "available" and described["RequireTLS"] is False
    assert described["Auth"][0]["SecretArn"] == proxy.secret_arn
    group = rds.describe_db_proxy_target_groups(DBProxyName=proxy.name)["TargetGroups"][0]
    assert group["TargetGroupName"] == "default" and group["IsDefault"] is True
    assert group["ConnectionPoolConfig"]["MaxConnectionsPercent"] == 100
    targets = rds.describe_db_proxy_targets(DBProxyName=proxy.name)["Targets"]
    by_type = {t["Type"]: t for t in targets}
    assert by_type["TRACKED_CLUSTER"]["Port"] == 0 and "Endpoint" not in by_type["TRACKED_CLUSTER"]
    instance = by_type["RDS_INSTANCE"]
    assert instance["Role"] == "READ_WRITE" and instance["Port"] == proxy.cluster["Port"]
    assert instance["RdsResourceId"] == f"{proxy.cluster['DBClusterIdentifier']}-w1"

    def code(call: Any, **params: Any) -> str:
        with pytest.raises(ClientError) as raised:
            call(**params)
        return raised.value.response["Error"]["Code"]

    assert (
        code(rds.describe_db_proxies, DBProxyName="pytest-no-such-proxy") == "DBProxyNotFoundFault"
    )
    assert code(rds.delete_db_proxy, DBProxyName="pytest-no-such-proxy") == "DBProxyNotFoundFault"
    assert (
        code(rds.register_db_proxy_targets, DBProxyName=proxy.name,
             DBClusterIdentifiers=[proxy.cluster["DBClusterIdentifier"]])
        == "DBProxyTargetAlreadyRegisteredFault"
    )  # fmt: skip
    assert (
        code(rds.describe_db_proxy_targets, DBProxyName=proxy.name, TargetGroupName="other")
        == "DBProxyTargetGroupNotFoundFault"
    )
    assert (
        code(rds.modify_db_proxy_target_group, DBProxyName=proxy.name, TargetGroupName="default",
             ConnectionPoolConfig={"MaxConnectionsPercent": 0})
        == "InvalidParameterValue"
    )  # fmt: skip
    subnets = proxy.describe()["VpcSubnetIds"]
    common = {"EngineFamily": "MYSQL", "RoleArn": proxy.role, "VpcSubnetIds": subnets,
              "Auth": [{"AuthScheme": "SECRETS", "SecretArn": proxy.secret_arn}]}  # fmt: skip
    assert (
        code(rds.create_db_proxy, DBProxyName=proxy.name, **common) == "DBProxyAlreadyExistsFault"
    )
    assert code(rds.create_db_proxy, DBProxyName="bad--name", **common) == "InvalidParameterValue"


def test_many_clients_share_few_database_connections(proxy: Proxy):
    clients, rounds = 24, 10
    errors: list[BaseException] = []
    start, done = threading.Barrier(clients, timeout=60), threading.Barrier(clients + 1, timeout=60)

    def client() -> None:
        try:
            with proxy.connect() as connection:  # pymysql's default: autocommit off
                start.wait()
                for number in range(rounds):
                    assert _select_one(connection, f"SELECT {number}") == (number,)
                    connection.commit()  # ends the transaction: the connection goes back
                done.wait()  # every client still connected while the database is counted
                done.wait()
        except BaseException as error:
            errors.append(error)

    proxy.pool(MaxConnectionsPercent=4, ConnectionBorrowTimeout=30, MaxIdleConnectionsPercent=4)
    try:
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        done.wait()
        opened = proxy.proxy_threads()
        done.wait()
        for thread in threads:
            thread.join()
    finally:
        proxy.pool(
            MaxConnectionsPercent=100, MaxIdleConnectionsPercent=50, ConnectionBorrowTimeout=120
        )
    assert errors == []
    with proxy.direct() as connection:
        most = int(_select_one(connection, "SELECT @@max_connections")[0])
    assert 0 < opened <= most * 4 // 100 < clients


PINNING = {
    "user variable": ["SET @pytest_x = 1"],
    "untracked variable": ["SET SESSION foreign_key_checks = 0"],
    "prepared statement": ["PREPARE pytest_s FROM 'SELECT 1'"],
    "temporary table": ["CREATE TEMPORARY TABLE pytest_tmp (a INT)"],
    "table lock": [
        "CREATE TABLE IF NOT EXISTS pytest_locked (a INT)",
        "LOCK TABLES pytest_locked READ",
    ],
    "named lock": ["SELECT GET_LOCK('pytest', 1)"],
    "statement over 16 KB": ["SELECT 1 /* " + "x" * 17000 + " */"],
}


@pytest.mark.parametrize("condition", sorted(PINNING))
def test_pinning_holds_the_connection_until_the_client_leaves(proxy: Proxy, condition: str):
    with _single_connection_pool(proxy):
        pinned = proxy.connect(autocommit=True)
        with pinned.cursor() as cursor:
            for statement in PINNING[condition]:
                cursor.execute(statement)
        other = proxy.connect(autocommit=True)
        # The pool's one connection stays with the pinned session: the other one times out.
        assert _error_of(lambda: _select_one(other)) == (
            9501,
            "Timed-out waiting to acquire database connection",
        )
        assert _select_one(pinned, "SELECT 2") == (2,)
        if condition == "user variable":  # the gauge the course charts sees it too
            by_proxy = {"ProxyName": proxy.name}
            wait_until(
                lambda: any(
                    p["Maximum"] >= 1
                    for p in _statistic(
                        proxy, "DatabaseConnectionsCurrentlySessionPinned", by_proxy, "Maximum"
                    )
                ),
                what="DatabaseConnectionsCurrentlySessionPinned",
            )
        pinned.close()  # the release: the pinned connection closes with its client
        assert wait_until(lambda: _try_select(other), what="the pool's connection freed")


def _closed_by_server(connection: Any) -> bool:
    """Whether the proxy closed a (plaintext) connection; looks without sending anything,
    as a ping would make an idle client active again."""
    try:
        return connection._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def _try_select(connection: Any) -> bool:
    try:
        return _select_one(connection) == (1,)
    except pymysql.OperationalError:
        return False


def test_tracked_variables_do_not_pin_and_follow_the_session(proxy: Proxy):
    with _single_connection_pool(proxy):
        first = proxy.connect(autocommit=True)
        with first.cursor() as cursor:
            cursor.execute("SET time_zone = '+05:00'")
            cursor.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
            cursor.execute("SET NAMES utf8mb4")
        second = proxy.connect(autocommit=True)
        assert _select_one(second, "SELECT @@time_zone") == ("SYSTEM",)  # not first's value
        assert _select_one(first, "SELECT @@time_zone, @@sql_mode") == ("+05:00", "ANSI_QUOTES")
        assert _select_one(second, "SELECT @@time_zone") == ("SYSTEM",)
        first.close()
        second.close()


def test_exclude_variable_sets_keeps_sets_from_pinning(proxy: Proxy):
    with _single_connection_pool(proxy, SessionPinningFilters=["EXCLUDE_VARIABLE_SETS"]):
        first = proxy.connect(autocommit=True)
        with first.cursor() as cursor:
            cursor.execute("SET @pytest_leak = 7")
        second = proxy.connect(autocommit=True)
        # Not pinned: the other session gets the same connection, user variable and all,
        # which is why AWS says to use the filter only when that is harmless.
        assert _select_one(second, "SELECT @pytest_leak") == (7,)
        first.close()
        second.close()


def test_init_query_runs_on_each_new_database_connection(proxy: Proxy):
    proxy.pool(InitQuery="SET SESSION sql_mode = 'NO_ZERO_DATE'")
    try:
        with proxy.connect(autocommit=True) as connection:
            with connection.cursor() as cursor:  # a state no pooled connection has: a new one
                cursor.execute("SET time_zone = '+01:23'")
            assert _select_one(connection, "SELECT @@sql_mode") == ("NO_ZERO_DATE",)
    finally:
        proxy.pool(InitQuery="")


def test_wrong_password_is_refused_with_1045(proxy: Proxy):
    code, message = _error_of(lambda: proxy.connect(password="not-the-password"))
    assert code == 1045
    assert message == f"Access denied for user '{proxy.user}'@'%' (using password: YES)"
    code, _ = _error_of(lambda: proxy.connect(user="nobody"))
    assert code == 1045


def test_tls_verifies_against_the_local_ca_and_require_tls_refuses_plaintext(proxy: Proxy):
    with proxy.connect(tls=True, autocommit=True) as connection:
        assert isinstance(connection._sock, ssl.SSLSocket)
        assert _select_one(connection) == (1,)
    proxy.rds.modify_db_proxy(DBProxyName=proxy.name, RequireTLS=True)
    try:
        assert proxy.describe()["RequireTLS"] is True
        assert _error_of(lambda: proxy.connect()) == (
            3159,
            "This RDS Proxy requires TLS connections.",
        )
        with proxy.connect(tls=True) as connection:
            assert _select_one(connection) == (1,)
    finally:
        proxy.rds.modify_db_proxy(DBProxyName=proxy.name, RequireTLS=False)


def _set_iam(proxy: Proxy, mode: str) -> None:
    auth = {"AuthScheme": "SECRETS", "SecretArn": proxy.secret_arn, "IAMAuth": mode}
    proxy.rds.modify_db_proxy(DBProxyName=proxy.name, Auth=[auth])


def _token(proxy: Proxy, user: str, minutes_ago: int = 0) -> str:
    """An IAM auth token for the proxy endpoint, signed now or some minutes ago."""
    signed_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    with mock.patch("botocore.auth.get_current_datetime", lambda: signed_at):
        return proxy.rds.generate_db_auth_token(proxy.host, 3306, user)


def test_iam_tokens_over_tls(proxy: Proxy):
    _set_iam(proxy, "REQUIRED")
    try:
        assert proxy.describe()["Auth"][0]["IAMAuth"] == "REQUIRED"
        with proxy.connect(password=_token(proxy, proxy.user), tls=True) as connection:
            assert _select_one(connection) == (1,)
        expired = _token(proxy, proxy.user, minutes_ago=16)
        assert _error_of(lambda: proxy.connect(password=expired, tls=True))[0] == 1045
        stranger = _token(proxy, "someone")
        code = _error_of(lambda: proxy.connect(user="someone", password=stranger, tls=True))[0]
        assert code == 1045
        # A token made for another user does not let this user in either.
        assert _error_of(lambda: proxy.connect(password=stranger, tls=True))[0] == 1045
        # The secret's password is no longer enough, and a token needs TLS.
        assert _error_of(lambda: proxy.connect(tls=True))[0] == 1045
        assert _error_of(lambda: proxy.connect(password=_token(proxy, proxy.user)))[0] == 3159
    finally:
        _set_iam(proxy, "DISABLED")


def test_iam_auth_is_per_secret_a_password_user_next_to_an_iam_user(proxy: Proxy):
    """Pattern 22: the app's secret says DISABLED (password), the master's REQUIRED (token)."""
    master_secret = proxy.cluster["MasterUserSecret"]["SecretArn"]
    auth = [
        {"AuthScheme": "SECRETS", "SecretArn": proxy.secret_arn, "IAMAuth": "DISABLED"},
        {"AuthScheme": "SECRETS", "SecretArn": master_secret, "IAMAuth": "REQUIRED"},
    ]
    proxy.rds.modify_db_proxy(DBProxyName=proxy.name, Auth=auth)
    master_user, master_password = proxy.master
    try:
        with proxy.connect(tls=True) as connection:  # the app user's password
            assert _select_one(connection) == (1,)
        token = _token(proxy, master_user)
        with proxy.connect(user=master_user, password=token, tls=True) as connection:
            assert _select_one(connection) == (1,)
        refused = _error_of(
            lambda: proxy.connect(user=master_user, password=master_password, tls=True)
        )
        assert refused[0] == 1045  # the master's password alone is not enough
    finally:
        _set_iam(proxy, "DISABLED")


def test_a_wrong_secret_makes_the_target_unavailable(proxy: Proxy, lab: helpers.Lab):
    secrets = lab.client("secretsmanager")
    wrong = secrets.create_secret(
        Name=unique("pytest-proxy-wrong"),
        SecretString=json.dumps({"username": proxy.user, "password": "wrong-password-1"}),
    )["ARN"]
    name = unique("pytest-proxy-bad")
    rds = proxy.rds
    rds.create_db_proxy(
        DBProxyName=name, EngineFamily="MYSQL", RoleArn=proxy.role,
        VpcSubnetIds=proxy.describe()["VpcSubnetIds"],
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": wrong, "IAMAuth": "DISABLED"}],
    )  # fmt: skip
    try:
        wait_until(
            lambda: (
                rds.describe_db_proxies(DBProxyName=name)["DBProxies"][0]["Status"] == "available"
            ),
            what="the second proxy available",
        )
        registered = rds.register_db_proxy_targets(
            DBProxyName=name, DBClusterIdentifiers=[proxy.cluster["DBClusterIdentifier"]]
        )["DBProxyTargets"]
        assert {t["Type"] for t in registered} == {"TRACKED_CLUSTER", "RDS_INSTANCE"}

        def health() -> dict[str, str] | None:
            targets = rds.describe_db_proxy_targets(DBProxyName=name)["Targets"]
            found = [t["TargetHealth"] for t in targets if t["Type"] == "RDS_INSTANCE"][0]
            return found if found["State"] != "REGISTERING" else None

        assert wait_until(health, what="the target's health") == {
            "State": "UNAVAILABLE",
            "Reason": "AUTH_FAILURE",
            "Description": "Proxy does not have any registered credentials",
        }
        # Clients still log in against the secret, but no database connection is to be had.
        host = rds.describe_db_proxies(DBProxyName=name)["DBProxies"][0]["Endpoint"]
        client = pymysql.connect(
            host=host, port=3306, user=proxy.user, password="wrong-password-1", ssl_disabled=True
        )
        assert _error_of(lambda: _select_one(client))[0] == 9501
        deleted = rds.delete_db_proxy(DBProxyName=name)["DBProxy"]
        assert deleted["Status"] == "deleting"
        wait_until(lambda: _closed_by_server(client), what="the client disconnected")
    finally:
        with contextlib.suppress(ClientError):
            rds.delete_db_proxy(DBProxyName=name)
        secrets.delete_secret(SecretId=wrong, ForceDeleteWithoutRecovery=True)


CLIENT_SCRIPT = """
import sys, pymysql
connection = pymysql.connect(host=sys.argv[1], port=3306, user=sys.argv[2],
                             password=sys.argv[3], ssl_disabled=True)
connection.cursor().execute("SELECT SLEEP(120) AS pytest_mid_query")
"""


def test_a_client_killed_mid_query_leaves_no_database_connection_behind(proxy: Proxy):
    def running() -> int:
        with proxy.direct() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE INFO LIKE 'SELECT SLEEP(120) AS pytest_mid_query%%'"
            )
            return int(cursor.fetchone()[0])

    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, proxy.host, proxy.user, proxy.password]
    )
    try:
        wait_until(lambda: running() == 1, what="the client's query running in the database")
    finally:
        client.kill()
        client.wait()
    wait_until(lambda: running() == 0, what="the query killed with its client")
    with proxy.connect(autocommit=True) as connection:  # the proxy still serves
        assert _select_one(connection) == (1,)


def _statistic(proxy: Proxy, name: str, dimensions: dict[str, str], stat: str) -> Any:
    now = datetime.datetime.now(datetime.UTC)
    points = proxy.lab.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/RDS", MetricName=name, Statistics=[stat], Period=60,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - datetime.timedelta(minutes=30), EndTime=now + datetime.timedelta(minutes=1),
    )["Datapoints"]  # fmt: skip
    return points


def test_metrics_with_aws_names_units_and_dimensions(proxy: Proxy):
    with proxy.connect(autocommit=True) as connection:
        for _ in range(3):
            _select_one(connection)
    with contextlib.suppress(pymysql.MySQLError):
        proxy.connect(password="not-the-password")
    by_proxy = {"ProxyName": proxy.name}
    by_endpoint = {**by_proxy, "EndpointName": "default"}
    by_target = {**by_proxy, "TargetGroup": "default",
                 "Target": f"{proxy.cluster['DBClusterIdentifier']}-w1"}  # fmt: skip
    by_role = {**by_proxy, "TargetGroup": "default", "TargetRole": "READ_WRITE"}

    def total(name: str, dims: dict[str, str]) -> float:
        return sum(p["Sum"] for p in _statistic(proxy, name, dims, "Sum"))

    wait_until(lambda: total("QueryRequests", by_endpoint) >= 3, what="QueryRequests")
    assert total("ClientConnectionsReceived", by_proxy) >= 2
    assert total("ClientConnectionsSetupFailedAuth", by_endpoint) >= 1
    latency = _statistic(proxy, "DatabaseConnectionsBorrowLatency", by_proxy, "Average")
    assert latency and all(p["Unit"] == "Microseconds" for p in latency)
    for dims in (by_proxy, by_target, by_role):
        assert _statistic(proxy, "DatabaseConnections", dims, "Maximum"), dims
        most = _statistic(proxy, "MaxDatabaseConnectionsAllowed", dims, "Maximum")
        assert most and most[-1]["Unit"] == "Count"
    assert _statistic(proxy, "ClientConnections", by_endpoint, "Maximum")
    assert _statistic(proxy, "QueryDatabaseResponseLatency", by_target, "Average")
    names = {
        m["MetricName"]
        for m in proxy.lab.client("cloudwatch").list_metrics(
            Namespace="AWS/RDS", Dimensions=[{"Name": "ProxyName", "Value": proxy.name}]
        )["Metrics"]
    }
    assert {
        "ClientConnections", "DatabaseConnections", "DatabaseConnectionsCurrentlyBorrowed",
        "DatabaseConnectionsCurrentlySessionPinned", "DatabaseConnectionsCurrentlyInTransaction",
        "DatabaseConnectionsBorrowLatency", "QueryRequests", "QueryDatabaseResponseLatency",
        "ClientConnectionsReceived", "ClientConnectionsSetupFailedAuth",
        "MaxDatabaseConnectionsAllowed",
    } <= names  # fmt: skip


def test_the_proxy_logs_to_its_log_group(proxy: Proxy):
    logs = proxy.lab.client("logs")
    group = f"/aws/rds/proxy/{proxy.name}"

    def messages() -> list[str] | None:
        found = logs.filter_log_events(logGroupName=group).get("events", [])
        text = [e["message"] for e in found]
        return text if any("pinned" in m for m in text) else None

    found = wait_until(messages, what="a pinning message in the proxy's log")
    assert all(m.startswith("[default] ") for m in found)


def test_an_idle_client_is_disconnected_after_idle_client_timeout(proxy: Proxy):
    proxy.rds.modify_db_proxy(DBProxyName=proxy.name, IdleClientTimeout=1)
    try:
        assert proxy.describe()["IdleClientTimeout"] == 1
        connection = proxy.connect(autocommit=True)
        wait_until(lambda: _closed_by_server(connection), what="the idle client disconnected")
    finally:
        proxy.rds.modify_db_proxy(DBProxyName=proxy.name, IdleClientTimeout=1800)


def test_a_transaction_holds_its_connection_until_commit(proxy: Proxy):
    with proxy.direct() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS pytest_rows (a INT) ENGINE=InnoDB")
    with _single_connection_pool(proxy):
        first, second = proxy.connect(), proxy.connect(autocommit=True)
        # autocommit off: reading a table opens a transaction (the status flags say so)
        assert _select_one(first, "SELECT COUNT(*) FROM pytest_rows") == (0,)
        assert _error_of(lambda: _select_one(second))[0] == 9501
        first.commit()  # the server's status flags say the transaction ended: returned
        assert _select_one(second) == (1,)
        first.close()
        second.close()
