"""RDS for PostgreSQL helpers on the live local cloud: network, instance, CA bundle, teardown.

The instance is reached as the pattern's executor reaches it: credentials from the managed
secret, TLS verified against the CA bundle `build_context_with_ca` puts in the image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import helpers
from helpers import cleanup, ec2, rds_postgres

PATTERN = "93"  # used by no notebook, so a failed teardown here never hides a notebook's


@pytest.fixture
def lab93(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-93 resources are torn down after the test, even when it fails."""
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)
    yield lab
    cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def test_instance_with_managed_secret_verified_tls_and_teardown(
    lab93: helpers.Lab, tmp_path: Path
) -> None:
    network = rds_postgres.ensure_network(lab93, PATTERN)
    assert len(network.subnet_ids) == 2 and network.client_group_id != network.database_group_id
    groups = lab93.client("ec2").describe_security_groups(GroupIds=[network.database_group_id])
    [rule] = groups["SecurityGroups"][0]["IpPermissions"]
    assert rule["FromPort"] == 5432
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [network.client_group_id]

    db = rds_postgres.ensure_instance(lab93, PATTERN, "db", network=network, database="shop")
    assert (db.status, db.port, db.database) == ("available", 5432, "shop")
    assert (db.instance_class, db.storage_gib, db.storage_type) == ("db.t4g.micro", 20, "gp3")
    assert not db.publicly_accessible
    assert (
        rds_postgres.ensure_instance(lab93, PATTERN, "db", network=network, database="shop") == db
    )
    secret = lab93.client("secretsmanager").get_secret_value(SecretId=db.secret_arn)
    login = json.loads(secret["SecretString"])
    assert set(login) == {"username", "password"} and login["username"] == "course_admin"

    source = tmp_path / "executor"
    source.mkdir()
    (source / "app.py").write_text("# the handler\n")
    context = rds_postgres.build_context_with_ca(lab93, source)
    assert sorted(p.name for p in context.iterdir()) == ["app.py", "rds-ca-bundle.pem"]
    settings = {
        "host": db.address, "port": db.port, "dbname": db.database, "user": login["username"],
        "password": login["password"], "connect_timeout": 5,
    }  # fmt: skip
    bundle = str(context / "rds-ca-bundle.pem")
    with psycopg.connect(**settings, sslmode="verify-full", sslrootcert=bundle) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        assert connection.info.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError):  # TLS is required, as on PostgreSQL 15+
        psycopg.connect(**settings, sslmode="disable").close()

    found = {r.kind for r in cleanup.find_resources(lab93, PATTERN)}
    assert {rds_postgres.KIND, rds_postgres.GROUP_KIND, rds_postgres.CLIENT_GROUP_KIND} <= found
    cleanup.teardown(lab93, pattern=PATTERN, quiet=True)
    assert cleanup.find_resources(lab93, PATTERN) == []
    assert rds_postgres.instance_info(lab93, PATTERN, "db") is None
    with pytest.raises(lab93.client("secretsmanager").exceptions.ResourceNotFoundException):
        lab93.client("secretsmanager").describe_secret(SecretId=db.secret_arn)


def test_interface_endpoint_is_found_again_and_torn_down(lab93: helpers.Lab) -> None:
    network = rds_postgres.ensure_network(lab93, PATTERN)
    endpoint = ec2.ensure_interface_endpoint(
        lab93, PATTERN, "secretsmanager", vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids, client_group_id=network.client_group_id,
    )  # fmt: skip
    assert endpoint["PrivateDnsEnabled"] and endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == f"com.amazonaws.{lab93.region}.secretsmanager"
    same = ec2.ensure_interface_endpoint(
        lab93, PATTERN, "secretsmanager", vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids, client_group_id=network.client_group_id,
    )  # fmt: skip
    assert same["VpcEndpointId"] == endpoint["VpcEndpointId"]
    kinds = {r.kind for r in cleanup.find_resources(lab93, PATTERN)}
    assert {ec2.ENDPOINT_KIND, ec2.ENDPOINT_GROUP_KIND} <= kinds
    cleanup.teardown(lab93, pattern=PATTERN, quiet=True)
    assert cleanup.find_resources(lab93, PATTERN) == []
