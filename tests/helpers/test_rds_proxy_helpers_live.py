"""RDS Proxy helpers on the live local cloud: the whole chain, a TLS + IAM login, teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

import helpers
from helpers import aurora, rds_proxy

pytestmark = pytest.mark.engines
PATTERN = "20"


@pytest.fixture
def lab20(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-20 resources are torn down after the test, even when it fails."""
    yield lab
    helpers.cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def test_proxy_chain_is_idempotent_reachable_with_tls_and_a_token_and_torn_down(lab20):
    cluster = aurora.ensure_cluster(
        lab20, PATTERN, "proxydb", min_acu=0.5, max_acu=1, data_api=False
    )
    network = rds_proxy.ensure_network(lab20, PATTERN, cluster.identifier)
    assert rds_proxy.ensure_network(lab20, PATTERN, cluster.identifier) == network
    ec2 = lab20.client("ec2")
    proxy_group = ec2.describe_security_groups(GroupIds=[network.proxy_group_id])
    (rule,) = proxy_group["SecurityGroups"][0]["IpPermissions"]
    assert (rule["FromPort"], rule["ToPort"]) == (3306, 3306)
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [network.client_group_id]

    role = rds_proxy.ensure_proxy_role(lab20, PATTERN, cluster.secret_arn)
    policy = helpers.iam.inline_policy(lab20, role["RoleName"])
    assert policy["Statement"] == helpers.iam.secret_read_statements(cluster.secret_arn)
    proxy = rds_proxy.ensure_proxy(
        lab20,
        PATTERN,
        "proxy",
        secret_arn=cluster.secret_arn,
        role_arn=role["Arn"],
        network=network,
    )
    again = rds_proxy.ensure_proxy(
        lab20,
        PATTERN,
        "proxy",
        secret_arn=cluster.secret_arn,
        role_arn=role["Arn"],
        network=network,
    )
    assert again == proxy and proxy.status == "available" and proxy.resource_id.startswith("prx-")
    targets = rds_proxy.ensure_targets(lab20, proxy, cluster.identifier)
    instances = targets[targets["type"] == "RDS_INSTANCE"]
    assert list(instances["id"]) == [cluster.writer]
    assert set(instances["health"]) == {"AVAILABLE"}
    assert "TRACKED_CLUSTER" in set(targets["type"])
    pool = rds_proxy.configure_pool(lab20, proxy, max_connections_percent=50)
    assert pool["MaxConnectionsPercent"] == 50

    # What the notebook's function does, from this process: TLS verified with the default
    # trust store (helpers.connect added the local CA to it) and an IAM token as password.
    token = lab20.client("rds").generate_db_auth_token(
        DBHostname=proxy.endpoint, Port=proxy.port, DBUsername=aurora.MASTER_USERNAME
    )
    connection = pymysql.connect(
        host=proxy.endpoint,
        port=proxy.port,
        user=aurora.MASTER_USERNAME,
        password=token,
        database=cluster.database,
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        connect_timeout=10,
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        assert cursor.fetchone()[0] == rds_proxy.max_connections(cluster.max_acu) == 90

    rows = helpers.cleanup.teardown(lab20, pattern=PATTERN, quiet=True)
    deleted = {row["kind"] for row in rows if row["result"] == "deleted"}
    assert {rds_proxy.KIND, rds_proxy.PROXY_GROUP_KIND, rds_proxy.CLIENT_GROUP_KIND} <= deleted
    assert rds_proxy.proxy_info(lab20, PATTERN, "proxy") is None
    assert helpers.cleanup.find_resources(lab20, PATTERN) == []
