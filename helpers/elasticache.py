"""ElastiCache Serverless for the course: the cache's security group, the cache, its metrics.

1. `ensure_cache_network`: a security group for the cache that accepts 6379 (primary) and
   6380 (reads) from the functions' security group only. AWS's serverless caches answer on
   both ports (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ReadReplicas.html).
2. `ensure_serverless_cache`: get or create a Valkey (or Redis OSS) serverless cache in those
   subnets, with usage limits, and wait until it is `available`. boto3 has no waiter for
   serverless caches, so this polls DescribeServerlessCaches itself.
3. `cache_metrics`: its AWS/ElastiCache metrics, by the `clusterId` dimension that
   serverless caches publish under.

Teardown (`RESOURCE_KINDS`) deletes the cache after the functions that use it, waits until
it is gone, then deletes its security group once no network interface holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import cleanup, ec2, naming
from .cloudwatch import Metric, metrics_frame
from .costs import Price
from .lab import Lab
from .waiting import wait_for

KIND = "serverless cache"
GROUP_KIND = "serverless cache security group"
GROUP_NAME = "cache"
PORTS = (6379, 6380)  # primary endpoint, and the reader endpoint
NAMESPACE = "AWS/ElastiCache"
DIMENSION = "clusterId"  # serverless caches publish under this one, not CacheClusterId
_FAILED = "create-failed"


@dataclass(frozen=True)
class CacheInfo:
    """What a notebook needs to know about a serverless cache."""

    name: str
    arn: str
    engine: str
    status: str
    address: str  # a DNS name on AWS, the cache's own loopback address locally
    port: int  # 6379
    reader_port: int  # 6380
    security_group_ids: list[str]
    subnet_ids: list[str]
    usage_limits: dict[str, Any]


def ensure_cache_network(
    lab: Lab, pattern: str, vpc_id: str, client_group_id: str
) -> dict[str, Any]:
    """The cache's security group: 6379 and 6380 from the functions' group, nothing else."""
    group = ec2.ensure_security_group(
        lab,
        pattern,
        GROUP_NAME,
        vpc_id,
        description="ElastiCache Serverless: Valkey/Redis from the course's functions only",
        ledger_kind=GROUP_KIND,
    )
    for port in PORTS:
        ec2.allow_from_group(lab, group["GroupId"], client_group_id, port, "functions")
    return group


def ensure_serverless_cache(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    security_group_ids: Sequence[str],
    subnet_ids: Sequence[str],
    engine: str = "valkey",
    max_data_gb: int = 1,
    max_ecpu_per_second: int = 5000,
) -> CacheInfo:
    """Get or create a serverless cache with these usage limits; wait until it is available.

    The limits cap what a runaway loop can cost: at most `max_data_gb` of data and
    `max_ecpu_per_second` ECPUs a second (AWS throttles beyond that).
    """
    cache_name = lab.name(pattern, name, 40)  # AWS keeps serverless cache names lowercase
    client = lab.client("elasticache")
    if _describe(client, cache_name) is None:
        client.create_serverless_cache(
            ServerlessCacheName=cache_name,
            Engine=engine,
            Description=f"course pattern {pattern}",
            CacheUsageLimits={
                "DataStorage": {"Maximum": max_data_gb, "Unit": "GB"},
                "ECPUPerSecond": {"Maximum": max_ecpu_per_second},
            },
            SecurityGroupIds=list(security_group_ids),
            SubnetIds=list(subnet_ids),
            Tags=naming.tag_list(lab.tags(pattern)),
        )
        lab.ledger.record(KIND, cache_name, pattern)
    cache = wait_for(
        lambda: _available(client, cache_name),
        what=f"serverless cache {cache_name}",
        pace=lab.pace.cache_available,
        hint="A new serverless cache takes a minute or more on AWS; re-run to keep waiting.",
    )
    return cache_info_from(cache)


def cache_info(lab: Lab, pattern: str, name: str) -> CacheInfo | None:
    """The cache `ensure_serverless_cache(lab, pattern, name, ...)` made, or None."""
    found = _describe(lab.client("elasticache"), lab.name(pattern, name, 40))
    return None if found is None else cache_info_from(found)


def cache_info_from(cache: dict[str, Any]) -> CacheInfo:
    """A CacheInfo from one DescribeServerlessCaches entry."""
    endpoint = cache.get("Endpoint", {})
    reader = cache.get("ReaderEndpoint", {})
    return CacheInfo(
        name=cache["ServerlessCacheName"],
        arn=cache["ARN"],
        engine=cache["Engine"],
        status=cache["Status"],
        address=endpoint.get("Address", ""),
        port=int(endpoint.get("Port", PORTS[0])),
        reader_port=int(reader.get("Port", PORTS[1])),
        security_group_ids=list(cache.get("SecurityGroupIds", [])),
        subnet_ids=list(cache.get("SubnetIds", [])),
        usage_limits=cache.get("CacheUsageLimits", {}),
    )


def cache_metrics(
    lab: Lab, cache: CacheInfo, names: Iterable[tuple[str, str]], *, minutes: int = 30
) -> pd.DataFrame:
    """(metric, statistic) pairs of the cache, one column each, per `lab.pace.metric_period`."""
    metrics = [
        Metric(NAMESPACE, metric, stat, {DIMENSION: cache.name}, f"{metric} {stat}")
        for metric, stat in names
    ]
    return metrics_frame(lab, metrics, minutes=minutes, period=lab.pace.metric_period)


def _describe(client: Any, cache_name: str) -> dict[str, Any] | None:
    try:
        return client.describe_serverless_caches(ServerlessCacheName=cache_name)[
            "ServerlessCaches"
        ][0]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ServerlessCacheNotFoundFault":
            return None
        raise


def _available(client: Any, cache_name: str) -> dict[str, Any] | None:
    """The cache once it is available (AWS sends statuses in lowercase); fail on create-failed."""
    cache = _describe(client, cache_name)
    status = (cache or {}).get("Status", "").lower()
    if status == _FAILED:
        raise RuntimeError(
            f"serverless cache {cache_name} failed to create: delete it "
            "(helpers.cleanup.teardown) and try again"
        )
    return cache if status == "available" else None


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course serverless cache (all runs); names say run and pattern."""
    return cleanup.named(
        KIND, lab, "elasticache.describe_serverless_caches", "ServerlessCaches",
        "ServerlessCacheName",
    )  # fmt: skip


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a cache (waiting while it is still creating or modifying), then wait it away."""
    client = lab.client("elasticache")
    cleanup.retry_while(
        lab,
        lambda: client.delete_serverless_cache(ServerlessCacheName=resource.identifier),
        ("InvalidServerlessCacheStateFault",),
        f"deleting {resource.identifier} (it is still changing)",
        1800,
    )
    wait_for(
        lambda: _describe(client, resource.identifier) is None,
        what=f"deleting serverless cache {resource.identifier}",
        pace=lab.pace.cache_deleted,
    )


RESOURCE_KINDS = [
    # The functions that use the cache go first; its security group goes after the cache.
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function",)),
    ec2.released_group_kind(GROUP_KIND, GROUP_NAME, after=("lambda function", KIND)),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`:
# https://aws.amazon.com/elasticache/pricing/ (serverless, Valkey).
PRICES = {
    "valkey_serverless_gb_hour": Price(0.084, "GB-hour", "data stored; at least 100 MB metered"),
    "valkey_serverless_million_ecpu": Price(0.0023, "million ECPUs", "1 ECPU per KB moved"),
}
