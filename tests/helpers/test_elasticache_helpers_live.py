"""ElastiCache helpers on the live local cloud: network, cache (idempotent), TLS use, teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import helpers
from helpers import elasticache
from localcloud.certificates import ca_bundle
from localcloud.config import state_dir

PATTERN = "23"


@pytest.fixture
def lab23(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-23 resources are torn down after the test, even when it fails."""
    yield lab
    helpers.cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def test_cache_chain_is_idempotent_usable_and_torn_down(lab23: helpers.Lab) -> None:
    ec2 = lab23.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnet_ids = sorted(s["SubnetId"] for s in subnets["Subnets"])[:2]
    clients = helpers.ec2.ensure_security_group(
        lab23, PATTERN, "fn-clients", vpc["VpcId"], description="test", ledger_kind="test group"
    )
    group = elasticache.ensure_cache_network(lab23, PATTERN, vpc["VpcId"], clients["GroupId"])
    again = elasticache.ensure_cache_network(lab23, PATTERN, vpc["VpcId"], clients["GroupId"])
    assert again["GroupId"] == group["GroupId"]
    rules = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"][0]
    assert sorted((r["FromPort"], r["ToPort"]) for r in rules["IpPermissions"]) == [
        (6379, 6379),
        (6380, 6380),
    ]
    for rule in rules["IpPermissions"]:
        assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [clients["GroupId"]]

    def ensure() -> elasticache.CacheInfo:
        return elasticache.ensure_serverless_cache(
            lab23, PATTERN, "cache", security_group_ids=[group["GroupId"]], subnet_ids=subnet_ids
        )

    cache = ensure()
    assert ensure() == cache  # get-or-create
    assert cache.status == "available" and (cache.port, cache.reader_port) == (6379, 6380)
    assert cache.security_group_ids == [group["GroupId"]] and cache.subnet_ids == subnet_ids
    assert cache.usage_limits["ECPUPerSecond"] == {"Maximum": 5000}
    assert elasticache.cache_info(lab23, PATTERN, "cache") == cache
    with redis.Redis(
        host=cache.address, port=cache.port, ssl=True, ssl_ca_certs=str(ca_bundle(state_dir()))
    ) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"

    found = {r.kind: r.identifier for r in helpers.cleanup.find_resources(lab23, PATTERN)}
    assert found[elasticache.KIND] == cache.name
    assert found[elasticache.GROUP_KIND] == group["GroupId"]
    helpers.cleanup.teardown(lab23, pattern=PATTERN, quiet=True)
    assert elasticache.cache_info(lab23, PATTERN, "cache") is None
    left = {r.kind for r in helpers.cleanup.find_resources(lab23, PATTERN)}
    assert not left & {elasticache.KIND, elasticache.GROUP_KIND}
