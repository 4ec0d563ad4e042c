"""Pattern 22's app user on the live local cloud: grants, proxy login, rotation, teardown."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pymysql
import pytest

import helpers
from helpers import aurora, rds_proxy

pytestmark = pytest.mark.engines
PATTERN = "22"


@pytest.fixture
def lab22(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-22 resources are torn down after the test, even when it fails."""
    yield lab
    helpers.cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _login(
    proxy: rds_proxy.ProxyInfo, user: str, password: str, database: str
) -> pymysql.Connection:
    """What the inventory app does: its own password, TLS verified with the default store."""
    return pymysql.connect(
        host=proxy.endpoint,
        port=proxy.port,
        user=user,
        password=password,
        database=database,
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        connect_timeout=10,
    )


def _error_code(call) -> int:
    with pytest.raises(pymysql.err.MySQLError) as caught:
        call()
    return caught.value.args[0]


def test_app_user_logs_in_through_the_proxy_with_only_its_grants_and_rotates(lab22):
    cluster = aurora.ensure_cluster(lab22, PATTERN, "appdb", min_acu=0.5, max_acu=1)
    db = helpers.rds_data.DataApi.for_cluster(lab22, cluster)
    db.execute("CREATE TABLE IF NOT EXISTS inventory (sku VARCHAR(50) PRIMARY KEY, stock INT)")
    db.execute("CREATE TABLE IF NOT EXISTS secrets_of_others (id INT)")
    network = rds_proxy.ensure_network(lab22, PATTERN, cluster.identifier)
    role = rds_proxy.ensure_proxy_role(lab22, PATTERN, cluster.secret_arn)
    proxy = rds_proxy.ensure_proxy(
        lab22,
        PATTERN,
        "proxy",
        secret_arn=cluster.secret_arn,
        role_arn=role["Arn"],
        network=network,
    )
    rds_proxy.ensure_targets(lab22, proxy, cluster.identifier)
    assert rds_proxy.proxy_for_cluster(lab22, PATTERN, "proxy", cluster.identifier) == proxy
    assert rds_proxy.proxy_for_cluster(lab22, PATTERN, "proxy", "another-cluster") is None

    grants = {"inventory": ["SELECT", "INSERT", "UPDATE"]}
    user = aurora.ensure_app_user(
        lab22, PATTERN, "db-user", cluster, username="app", privileges=grants
    )
    assert (
        aurora.ensure_app_user(
            lab22, PATTERN, "db-user", cluster, username="app", privileges=grants
        )
        == user
    )  # a re-run finds the secret and keeps its password
    auth = aurora.allow_through_proxy(lab22, proxy.name, user)
    assert [(a["SecretArn"], a["IAMAuth"]) for a in auth] == [
        (cluster.secret_arn, "REQUIRED"),
        (user.secret_arn, "DISABLED"),
    ]
    assert aurora.allow_through_proxy(lab22, proxy.name, user) == auth  # not added twice

    secrets = lab22.client("secretsmanager")
    first = json.loads(secrets.get_secret_value(SecretId=user.secret_arn)["SecretString"])
    assert first["username"] == "app" and len(first["password"]) == 32
    connection = _login(proxy, "app", first["password"], cluster.database)
    with connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO inventory VALUES (%s, %s)", ("A-1", 3))
        connection.commit()
        cursor.execute("SELECT stock FROM inventory WHERE sku = %s", ("A-1",))
        assert cursor.fetchone() == (3,)
        # Nothing beyond the grants: another table, DDL.
        assert _error_code(lambda: cursor.execute("SELECT * FROM secrets_of_others")) == 1142
        assert _error_code(lambda: cursor.execute("DROP TABLE inventory")) == 1142

    aurora.rotate_password(lab22, cluster, user)
    second = json.loads(secrets.get_secret_value(SecretId=user.secret_arn)["SecretString"])
    assert second["password"] != first["password"]
    stale = lambda: _login(proxy, "app", first["password"], cluster.database)  # noqa: E731
    assert _error_code(stale) == 1045
    connection = _login(proxy, "app", second["password"], cluster.database)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM inventory")
        assert cursor.fetchone() == (1,)

    # The app user goes first: dropped from the database, its secret off the proxy, deleted.
    keep = set(helpers.cleanup.declared_kinds()) - {aurora.APP_USER_KIND}
    rows = helpers.cleanup.teardown(lab22, pattern=PATTERN, keep=keep, quiet=True)
    assert (aurora.APP_USER_KIND, "deleted") in {(r["kind"], r["result"]) for r in rows}
    users = db.query("SELECT COUNT(*) AS n FROM mysql.user WHERE user = 'app'")
    assert users["n"].tolist() == [0]
    described = lab22.client("rds").describe_db_proxies(DBProxyName=proxy.name)["DBProxies"][0]
    assert [a["SecretArn"] for a in described["Auth"]] == [cluster.secret_arn]
    helpers.cleanup.teardown(lab22, pattern=PATTERN, quiet=True)
    assert helpers.cleanup.find_resources(lab22, PATTERN) == []
