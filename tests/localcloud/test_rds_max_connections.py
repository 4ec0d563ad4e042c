"""Aurora Serverless v2 max_connections: AWS's table by maximum ACU, error 1040 past it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

import helpers
from localcloud.rds.state import max_connections_for

pytestmark = pytest.mark.engines


@pytest.mark.parametrize(
    ("max_acu", "expected"),
    [(1, 90), (2, 90), (4, 135), (6.5, 135), (8, 1000), (16, 2000), (128, 5000), (256, 5000)],
)
def test_max_connections_follow_the_table_row_at_or_below_max_acu(max_acu, expected):
    assert max_connections_for({"MinCapacity": 0.5, "MaxCapacity": max_acu}) == expected


def test_without_serverless_scaling_the_engine_default_stays():
    assert max_connections_for(None) == 151


def _password(lab: helpers.Lab, cluster: dict[str, Any]) -> str:
    arn = cluster["MasterUserSecret"]["SecretArn"]
    secret = lab.client("secretsmanager").get_secret_value(SecretId=arn)
    return json.loads(secret["SecretString"])["password"]


@contextlib.contextmanager
def _storm(cluster: dict[str, Any], password: str, attempts: int) -> Iterator[tuple[int, list]]:
    """Open up to `attempts` connections and hold them; yield (opened, errors)."""
    held, errors = [], []
    try:
        for _ in range(attempts):
            try:
                held.append(
                    pymysql.connect(
                        host=cluster["Endpoint"],
                        port=cluster["Port"],
                        user="admin",
                        password=password,
                        connect_timeout=5,
                    )
                )
            except pymysql.err.OperationalError as error:
                errors.append(error.args)
        yield len(held), errors
    finally:
        for connection in held:
            with contextlib.suppress(Exception):
                connection.close()


def _max_connections(cluster: dict[str, Any], password: str) -> int:
    with (
        pymysql.connect(
            host=cluster["Endpoint"], port=cluster["Port"], user="admin", password=password
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT @@GLOBAL.max_connections")
        return int(cursor.fetchone()[0])


def test_a_storm_past_max_connections_gets_too_many_connections(lab, aurora_clusters):
    cluster = aurora_clusters.create(
        "maxconn", ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 1}
    )
    password = _password(lab, cluster)
    assert _max_connections(cluster, password) == 90

    with _storm(cluster, password, attempts=110) as (opened, errors):
        # The server's one extra connection for a SUPER user is the only slack beyond 90.
        assert 80 <= opened <= 91
        assert errors and all(e == (1040, "Too many connections") for e in errors)
        assert opened + len(errors) == 110


def test_max_connections_is_static_until_a_reboot(lab, aurora_clusters):
    rds = lab.client("rds")
    cluster = aurora_clusters.create(
        "reboot", ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 1}
    )
    password = _password(lab, cluster)
    rds.modify_db_cluster(
        DBClusterIdentifier=cluster["DBClusterIdentifier"],
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
        ApplyImmediately=True,
    )
    assert _max_connections(cluster, password) == 90  # static, as on AWS

    writer = cluster["DBClusterIdentifier"] + "-w1"
    rebooted = rds.reboot_db_instance(DBInstanceIdentifier=writer)["DBInstance"]
    assert rebooted["DBInstanceIdentifier"] == writer
    assert _max_connections(cluster, password) == 135
