"""ElastiCache Serverless against the session's daemon: control plane, TLS, cluster mode, metrics.

One cache serves the module; the lifecycle test makes and deletes its own.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import redis
from botocore.exceptions import ClientError
from live_fixtures import unique
from polling import wait_until
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

import helpers
from localcloud import daemon
from localcloud.certificates import ca_bundle
from localcloud.config import state_dir


def available(ec: Any, name: str) -> dict[str, Any] | None:
    cache = ec.describe_serverless_caches(ServerlessCacheName=name)["ServerlessCaches"][0]
    return cache if cache["Status"] == "available" else None


def gone(ec: Any, name: str) -> bool:
    try:
        ec.describe_serverless_caches(ServerlessCacheName=name)
    except ClientError as error:
        return error.response["Error"]["Code"] == "ServerlessCacheNotFoundFault"
    return False


def error_of(call: Any, **params: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"][
        "HTTPStatusCode"
    ]


@pytest.fixture(scope="module")
def ec(module_lab: helpers.Lab) -> Any:
    return module_lab.client("elasticache")


@contextlib.contextmanager
def new_cache(ec: Any) -> Iterator[dict[str, Any]]:
    name = unique("cache")
    ec.create_serverless_cache(ServerlessCacheName=name, Engine="valkey")
    try:
        yield wait_until(lambda: available(ec, name), what=f"cache {name} available", timeout=60)
    finally:
        ec.delete_serverless_cache(ServerlessCacheName=name)
        wait_until(lambda: gone(ec, name), what=f"cache {name} deleted", timeout=60)


@pytest.fixture(scope="module")
def cache(ec: Any) -> Iterator[dict[str, Any]]:
    with new_cache(ec) as created:
        yield created


@pytest.fixture
def fresh_cache(ec: Any) -> Iterator[dict[str, Any]]:
    """A cache of the test's own, for counts no other test adds to."""
    with new_cache(ec) as created:
        yield created


@pytest.fixture(scope="module")
def ca() -> str:
    return str(ca_bundle(state_dir()))


def client(cache: dict[str, Any], ca: str, reader: bool = False, **extra: Any) -> redis.Redis:
    endpoint = cache["ReaderEndpoint" if reader else "Endpoint"]
    return redis.Redis(
        host=endpoint["Address"], port=endpoint["Port"], ssl=True, ssl_ca_certs=ca,
        socket_timeout=5, **extra,
    )  # fmt: skip


def test_control_plane_lifecycle_and_errors(ec: Any, cloud: daemon.DaemonInfo) -> None:
    name = unique("Life")  # AWS stores names lowercase
    limits = {
        "DataStorage": {"Maximum": 5, "Unit": "GB"},
        "ECPUPerSecond": {"Maximum": 5000},
    }
    created = ec.create_serverless_cache(
        ServerlessCacheName=name, Engine="redis", CacheUsageLimits=limits,
        Tags=[{"Key": "course", "Value": "scd"}],
    )["ServerlessCache"]  # fmt: skip
    assert created["Status"] == "creating"
    assert created["ServerlessCacheName"] == name.lower()
    assert created["ARN"].endswith(f":serverlesscache:{name.lower()}")
    assert (created["MajorEngineVersion"], created["FullEngineVersion"]) == ("7", "7.1")
    assert created["CacheUsageLimits"] == limits
    assert error_of(ec.create_serverless_cache, ServerlessCacheName=name, Engine="valkey") == (
        "ServerlessCacheAlreadyExistsFault",
        400,
    )
    assert error_of(ec.delete_serverless_cache, ServerlessCacheName=name)[0] in {
        "InvalidServerlessCacheStateFault",  # still creating
        "ServerlessCacheNotFoundFault",  # never: asserted just below
    }
    cache = wait_until(lambda: available(ec, name), what="available", timeout=60)
    assert cache["Endpoint"]["Port"] == 6379 and cache["ReaderEndpoint"]["Port"] == 6380
    assert cache["Endpoint"]["Address"] == cache["ReaderEndpoint"]["Address"]
    assert cache["Endpoint"]["Address"].startswith("127.0.")

    arn = cache["ARN"]
    ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "pattern", "Value": "23"}])
    ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["course"])
    assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [
        {"Key": "pattern", "Value": "23"}
    ]

    modified = ec.modify_serverless_cache(
        ServerlessCacheName=name, Description="cache-aside", Engine="valkey",
        MajorEngineVersion="8",
    )["ServerlessCache"]  # fmt: skip
    assert (modified["Status"], modified["Engine"]) == ("modifying", "valkey")
    assert error_of(ec.modify_serverless_cache, ServerlessCacheName=name, Description="x") == (
        "InvalidServerlessCacheStateFault",
        400,
    )
    wait_until(lambda: available(ec, name), what="modified", timeout=30)

    engines = {e["owner"]: e for e in daemon.call(cloud, "status")["engines"]}
    server = next(e for owner, e in engines.items() if owner.endswith(f":{name.lower()}"))
    assert server["running"] and Path(server["data_dir"]).exists()
    deleting = ec.delete_serverless_cache(ServerlessCacheName=name)["ServerlessCache"]
    assert deleting["Status"] == "deleting"
    wait_until(lambda: gone(ec, name), what="deleted", timeout=60)
    assert not Path(server["data_dir"]).exists()  # its data went with it
    address = (cache["Endpoint"]["Address"], 6379)
    with pytest.raises(OSError), socket.create_connection(address, timeout=2):
        pass  # nothing listens any more

    assert error_of(ec.describe_serverless_caches, ServerlessCacheName=name) == (
        "ServerlessCacheNotFoundFault",
        404,
    )
    bad = {"DataStorage": {"Maximum": 0, "Unit": "GB"}}
    upside_down = {"Minimum": 9000, "Maximum": 5000}
    for params in (
        {"Engine": "valkey", "CacheUsageLimits": bad},
        {"Engine": "valkey", "CacheUsageLimits": {"ECPUPerSecond": {"Maximum": 10}}},
        {"Engine": "valkey", "CacheUsageLimits": {"ECPUPerSecond": upside_down}},
        {"Engine": "oracle"},
    ):
        code = error_of(ec.create_serverless_cache, ServerlessCacheName=unique("bad"), **params)
        assert code == ("InvalidParameterValue", 400), params
    assert (
        error_of(ec.create_serverless_cache, ServerlessCacheName="1-bad--name", Engine="valkey")[0]
        == "InvalidParameterValue"
    )


def test_tls_is_required_and_verified_with_the_local_ca(cache: dict[str, Any], ca: str) -> None:
    with client(cache, ca) as verified:  # hostname checking stays on, as redis-py's default
        assert verified.ping()
    host = cache["Endpoint"]["Address"]
    public_only = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the public CAs, not the local one
    public_only.load_verify_locations(certifi.where())
    with (
        pytest.raises(ssl.SSLCertVerificationError),  # so the check above was a real one
        socket.create_connection((host, 6379), timeout=5) as raw,
    ):
        public_only.wrap_socket(raw, server_hostname=host)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=host, port=6379, socket_timeout=5).ping()  # plaintext: reset
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=host, port=6380, socket_timeout=5).ping()
    context = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection((host, 6379)) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]
    assert any(n.endswith(".serverless.use1.cache.amazonaws.com") for n in names)


def test_cluster_mode_as_a_serverless_cache(cache: dict[str, Any], ca: str) -> None:
    with client(cache, ca) as c:
        with pytest.raises(redis.ResponseError, match="SELECT is not allowed in cluster mode"):
            c.execute_command("SELECT", 1)
        with pytest.raises(ClusterCrossSlotError):  # the server's CROSSSLOT error
            c.mset({"user:1": "a", "user:2": "b"})
        assert c.mset({"{user}:1": "a", "{user}:2": "b"})  # one hash slot: allowed
        slots = c.execute_command("CLUSTER", "SLOTS")
        assert [(s[0], s[1]) for s in slots] == [(0, 16383)]
        assert (slots[0][2][0].decode(), slots[0][2][1]) == (cache["Endpoint"]["Address"], 6379)
        keys = {k.decode() for k in c.scan_iter(match="{user}:*")}
        assert keys == {"{user}:1", "{user}:2"}
    endpoint = cache["Endpoint"]
    cluster = RedisCluster(
        host=endpoint["Address"], port=endpoint["Port"], ssl=True, ssl_ca_certs=ca
    )
    try:
        assert cluster.get("{user}:1") == b"a"
    finally:
        cluster.close()
    with client(cache, ca, reader=True) as reader:
        assert reader.get("{user}:2") == b"b"  # the reader endpoint, 6380


def test_metrics_with_the_cluster_id_dimension(
    fresh_cache: dict[str, Any], ca: str, module_lab: helpers.Lab
) -> None:
    cache = fresh_cache
    name = cache["ServerlessCacheName"]
    cw = module_lab.client("cloudwatch")
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    key = f"metrics-{name}"
    with client(cache, ca) as c:
        for _ in range(3):
            assert c.get(key) is None  # misses
        c.set(key, "x" * 3000)  # 3 KB: 3 ECPUs by AWS's rule
        for _ in range(5):
            assert c.get(key)  # hits

    def stat(metric: str, statistic: str = "Sum") -> tuple[float, str] | None:
        points = cw.get_metric_statistics(
            Namespace="AWS/ElastiCache", MetricName=metric,
            Dimensions=[{"Name": "clusterId", "Value": name}],
            StartTime=start, EndTime=start + datetime.timedelta(minutes=10),
            Period=600, Statistics=[statistic],
        )["Datapoints"]  # fmt: skip
        return (points[0][statistic], points[0]["Unit"]) if points else None

    wait_until(lambda: (stat("CacheHits") or (0,))[0] >= 5, what="CacheHits", timeout=20)
    assert stat("CacheHits") == (5, "Count")
    assert stat("CacheMisses") == (3, "Count")
    hit_rate = stat("CacheHitRate", "Average")
    assert hit_rate is not None and hit_rate[1] == "Percent" and 0 < hit_rate[0] <= 100
    for metric, unit in {
        "SuccessfulReadRequestLatency": "Microseconds",
        "SuccessfulWriteRequestLatency": "Microseconds",
        "ElastiCacheProcessingUnits": "Count",
        "TotalCmdsCount": "Count",
        "NewConnections": "Count",
        "BytesUsedForCache": "Bytes",
        "CurrConnections": "Count",
        "CurrItems": "Count",
    }.items():
        found = stat(metric, "Maximum")
        assert found is not None and found[1] == unit, metric
    assert stat("TotalCmdsCount")[0] >= 9  # 3 GET + SET + 5 GET (the sampler's own excluded)
    ecpus = stat("ElastiCacheProcessingUnits")[0]
    assert ecpus >= 9 + 2  # at least one per command, and the 3 KB SET and GETs cost more
    assert stat("CurrItems", "Maximum")[0] >= 1
    assert stat("NewConnections")[0] == 1  # ours; the sampler's own is not counted
