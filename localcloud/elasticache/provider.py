"""ElastiCache Serverless: the serverless cache operations, each cache a real Redis server.

moto has no serverless caches, so this provider keeps them itself
(https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateServerlessCache.html).
Each cache is a Redis server from the engine manager, as AWS runs it: TLS only, with a
certificate from the local cloud's CA naming the endpoint's address and AWS-style host name,
and in cluster mode with one node owning all 16384 slots, so clients meet what a serverless
cache answers (`SELECT` refused, `CROSSSLOT` for multi-key commands across slots, `CLUSTER
SLOTS` listing the endpoint, `redis.Redis(ssl=True)` and `RedisCluster(ssl=True)` both
working). A plaintext client's connection is reset by the server (redis-py: "Connection
reset by peer"), as redis-rb users report ECONNRESET from AWS. Metrics go to AWS/ElastiCache
with the `clusterId` dimension (`metrics.py`).

Where the local cloud differs from AWS:
- Endpoint and ReaderEndpoint are the cache's own loopback address (127.0.3.1, 127.0.3.2,
  ...) on 6379 and 6380, not a DNS name; the AWS-style name
  (`<name>-<6 characters>.serverless.use1.cache.amazonaws.com`) is in the certificate only.
  If no such address can be bound the cache listens on 127.0.0.1 at free ports.
- The reader endpoint (6380) reaches the same server, so its reads are never stale; on AWS
  they are eventually consistent.
- Valkey and Redis OSS caches both run the machine's Redis 7 server; FullEngineVersion is
  what AWS would report. Memcached serverless caches are refused.
- `creating` lasts as long as the server takes to start (about a second), `deleting` as
  long as it takes to stop; `modifying` lasts one second. Under the AWS timing profile
  (`localcloud/timing.py`) both last AWS's times, scaled: the server starts only when
  `creating` ends (connections are refused until then), and a deleted cache stays
  `deleting` after its server stopped.
- CacheUsageLimits are checked and recorded, not enforced: no ThrottledCmds when
  ECPUPerSecond's maximum is passed, no eviction or OOM at DataStorage's maximum. Snapshots,
  KMS keys, user groups (RBAC) and IAM authentication are records only, and AWS's list of
  restricted commands (CONFIG, DEBUG, ...) is not applied.
- Security groups and subnets are recorded (the default VPC's when none are given) but no
  network rule is enforced.
- Metrics are sampled once a second from the server's INFO: counts are per second, so read
  them with Sum; SuccessfulRead/WriteRequestLatency is the server's own execution time per
  successful command (INFO commandstats), averaged over each second. ElastiCacheProcessingUnits
  follows AWS's rule of 1 ECPU per kilobyte transferred and at least 1 per command, over the
  second's traffic as a whole. The per-command-family ECPU metrics are not published.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..config import HOST
from ..context import CloudContext
from ..engines import EngineError
from ..protocols import ServiceError
from ..registry import Provider, RequestContext
from ..timing import Lifecycle
from .endpoint import PORT, READER_PORT, ReaderRelay, choose_address
from .metrics import (
    CacheSampler,
    close_quietly,
    command_families,
    publisher_for,
    read_info,
)
from .records import (
    MAX_CACHES,
    CacheRecord,
    check_engine,
    check_limits,
    check_name,
    check_tags,
    hostname,
    invalid,
    not_found,
    wrong_state,
)

log = logging.getLogger("localcloud.elasticache")

SAMPLE_SECONDS = 1.0
MODIFY_SECONDS = 1.0
PAGE = 50


@dataclass
class CacheRuntime:
    """The live parts of one available cache."""

    relay: ReaderRelay
    ca_file: str
    monitor: Any = None
    sampler: CacheSampler | None = None


class ElastiCacheProvider(Provider):
    """Serverless caches: records here, a TLS Redis server in cluster mode for each."""

    service = "elasticache"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._caches: dict[tuple[str, str, str], CacheRecord] = {}
        self._runtimes: dict[str, CacheRuntime] = {}  # by owner
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._lifecycle = Lifecycle(cloud.timing, "serverless cache")  # AWS timing profile only

    # ----- operations -------------------------------------------------------------------

    def CreateServerlessCache(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Record the cache as `creating` and start its server in the background."""
        name = check_name(params["ServerlessCacheName"])
        engine, major = check_engine(params["Engine"], params.get("MajorEngineVersion"))
        limits = check_limits(params.get("CacheUsageLimits"))
        tags = check_tags(params.get("Tags"))
        groups, subnets = self._network(params, context)
        record = CacheRecord(
            name=name,
            engine=engine,
            major=major,
            region=context.region,
            account_id=context.account_id,
            hostname=hostname(name, context.region),
            description=params.get("Description", ""),
            usage_limits=limits,
            security_group_ids=groups,
            subnet_ids=subnets,
            snapshot_retention_limit=int(params.get("SnapshotRetentionLimit") or 0),
            daily_snapshot_time=params.get("DailySnapshotTime") or "04:00",
            kms_key_id=params.get("KmsKeyId"),
            user_group_id=params.get("UserGroupId"),
            tags=tags,
        )
        key = self._key(context, name)
        with self._lock:
            if key in self._caches:
                raise ServiceError(
                    "ServerlessCacheAlreadyExistsFault", f"Serverless cache {name} already exists."
                )
            if sum(1 for k in self._caches if k[:2] == key[:2]) >= MAX_CACHES:
                raise ServiceError(
                    "ServerlessCacheQuotaForCustomerExceededFault",
                    f"You have reached the maximum of {MAX_CACHES} serverless caches.",
                )
            self._caches[key] = record
        self._lifecycle.created(key)
        threading.Thread(target=self._bring_up, args=(record,), name=f"cache-{name}").start()
        return {"ServerlessCache": record.shape()}

    def DescribeServerlessCaches(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Endpoint 6379 and ReaderEndpoint 6380 on the cache's own address; pages of 50."""
        if name := params.get("ServerlessCacheName"):
            return {"ServerlessCaches": [self._get(context, name).shape()]}
        size = int(params.get("MaxResults") or PAGE)
        if not 1 <= size <= PAGE:
            raise invalid(f"MaxResults must be between 1 and {PAGE}.")
        with self._lock:
            records = sorted(
                (r for k, r in self._caches.items() if k[:2] == self._key(context, "")[:2]),
                key=lambda r: r.name,
            )
        token = str(params.get("NextToken") or "0")
        if not token.isdigit():
            raise invalid("Invalid NextToken.")
        start = int(token)
        page = records[start : start + size]
        answer: dict[str, Any] = {"ServerlessCaches": [r.shape() for r in page]}
        if start + size < len(records):
            answer["NextToken"] = str(start + size)
        return answer

    def ModifyServerlessCache(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """`modifying` for a second; limits are recorded, Redis OSS upgrades to Valkey."""
        record = self._get(context, params["ServerlessCacheName"])
        if record.status != "available":
            raise wrong_state(record.name, record.status)
        limits = check_limits(params.get("CacheUsageLimits"))
        if engine := params.get("Engine"):
            # AWS upgrades Redis OSS to Valkey in place; nothing else changes engine.
            engine, major = check_engine(engine, params.get("MajorEngineVersion"))
            if (engine, record.engine) not in {("valkey", "redis"), (record.engine, record.engine)}:
                raise ServiceError(
                    "InvalidParameterCombination",
                    f"Cannot change the engine from {record.engine} to {engine}.",
                )
            record.engine, record.major = engine, major
        if "SecurityGroupIds" in params:
            record.security_group_ids = self._network(params, context)[0]
        with self._lock:
            if limits is not None:
                record.usage_limits = limits
            if "Description" in params:
                record.description = params["Description"]
            if "SnapshotRetentionLimit" in params:
                record.snapshot_retention_limit = int(params["SnapshotRetentionLimit"])
            if "DailySnapshotTime" in params:
                record.daily_snapshot_time = params["DailySnapshotTime"]
            if params.get("RemoveUserGroup"):
                record.user_group_id = None
            elif params.get("UserGroupId"):
                record.user_group_id = params["UserGroupId"]
            record.status = "modifying"
        timer = threading.Timer(MODIFY_SECONDS, self._modified, args=(record,))
        timer.daemon = True
        timer.start()
        return {"ServerlessCache": record.shape()}

    def DeleteServerlessCache(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """`deleting`, then the server stops, its data goes and the record disappears."""
        if params.get("FinalSnapshotName"):
            raise invalid("The local cloud does not take snapshots of serverless caches.")
        record = self._get(context, params["ServerlessCacheName"])
        with self._lock:
            if record.status not in ("available", "create-failed"):
                raise wrong_state(record.name, record.status)
            record.status = "deleting"
            shape = record.shape()
        threading.Thread(
            target=self._tear_down,
            args=(record, True, self._lifecycle.delete_s),
            name=f"cache-{record.name}-delete",
        ).start()
        return {"ServerlessCache": shape}

    def AddTagsToResource(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Tags of a serverless cache here; other resources' go to moto."""
        record = self._tagged(params, context)
        if record is None:
            return self.cloud.moto.call("elasticache", "AddTagsToResource", params, context.region)
        new = check_tags(params.get("Tags"))
        with self._lock:
            check_tags(params.get("Tags"), len(set(record.tags) | set(new)) - len(new))
            record.tags.update(new)
        return self._tag_list(record)

    def RemoveTagsFromResource(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Tags of a serverless cache here; other resources' go to moto."""
        record = self._tagged(params, context)
        if record is None:
            return self.cloud.moto.call(
                "elasticache", "RemoveTagsFromResource", params, context.region
            )
        with self._lock:
            for key in params.get("TagKeys") or []:
                record.tags.pop(key, None)
        return self._tag_list(record)

    def ListTagsForResource(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Tags of a serverless cache here; other resources' go to moto."""
        record = self._tagged(params, context)
        if record is None:
            return self.cloud.moto.call(
                "elasticache", "ListTagsForResource", params, context.region
            )
        return self._tag_list(record)

    # ----- lifecycle --------------------------------------------------------------------

    def reset(self) -> None:
        """Delete every cache: servers stopped, data gone."""
        with self._lock:
            records = list(self._caches.values())
        self._lifecycle.clear()
        for record in records:
            self._tear_down(record, True)

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            records = list(self._caches.values())
        for record in records:
            self._tear_down(record, False)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"serverless_caches": len(self._caches)}

    def endpoints(self) -> dict[str, Any]:
        """Each cache's primary endpoint, by name."""
        with self._lock:
            return {
                "serverless_caches": {
                    r.name: f"{r.host}:{r.port}" for r in self._caches.values() if r.port
                }
            }

    def cache(self, context: RequestContext, name: str) -> CacheRecord:
        """One cache's record (for other providers and tests)."""
        return self._get(context, name)

    # ----- the data plane ---------------------------------------------------------------

    def _bring_up(self, record: CacheRecord) -> None:
        key = (record.account_id, record.region, record.name)
        if self._stop.wait(self._lifecycle.seconds_left(key)):
            return  # AWS timing profile: the server starts when `creating` would end
        with self._lock:
            if self._caches.get(key) is not record:
                return  # reset meanwhile
        try:
            runtime = self._start_server(record)
            self._sample(record, runtime)  # the baseline: clients' commands count from here
        except Exception:
            log.exception("serverless cache %s: the server did not start", record.name)
            with self._lock:
                if record.status == "creating":
                    record.status = "create-failed"
            return
        with self._lock:
            self._runtimes[record.owner] = runtime
            if record.status == "creating":
                record.status = "available"
            if self._sampler is None:
                self._sampler = threading.Thread(
                    target=self._sample_loop, name="cache-metrics", daemon=True
                )
                self._sampler.start()

    def _start_server(self, record: CacheRecord) -> CacheRuntime:
        """The Redis server on the cache's own address (or 127.0.0.1), then the reader relay."""
        tried: set[str] = set()
        endpoint = None
        for _ in range(3):
            with self._lock:
                taken = {r.host for r in self._caches.values() if r.host} | tried
            address = choose_address(taken)
            if address is None:
                break
            tried.add(address)
            try:
                endpoint = self.cloud.engines.redis(
                    record.owner, tls=True, host=address, port=PORT, cluster=True,
                    hostnames=(record.hostname,),
                )  # fmt: skip
                break
            except EngineError as error:  # another process took the address meanwhile
                log.warning("cache %s on %s: %s", record.name, address, error)
        if endpoint is None:
            endpoint = self.cloud.engines.redis(
                record.owner, tls=True, host=HOST, cluster=True, hostnames=(record.hostname,)
            )
        reader_port = READER_PORT if endpoint.port == PORT else 0
        relay = ReaderRelay(endpoint.host, reader_port, (endpoint.host, endpoint.port))
        with self._lock:
            record.host, record.port, record.reader_port = endpoint.host, endpoint.port, relay.port
        return CacheRuntime(relay=relay, ca_file=str(endpoint.tls_ca_file))

    def _tear_down(self, record: CacheRecord, remove: bool, linger: float = 0.0) -> None:
        """Stop the server (and remove its data and record, `linger` seconds later)."""
        with self._lock:
            runtime = self._runtimes.pop(record.owner, None)
        if runtime is not None:
            runtime.relay.close()
            close_quietly(runtime.monitor)
        try:
            if remove:
                self.cloud.engines.remove(record.owner)
            else:
                self.cloud.engines.stop(record.owner)
        except EngineError:
            log.exception("serverless cache %s: stopping the server failed", record.name)
        if remove:
            self._stop.wait(linger)  # AWS timing profile: `deleting` lasts AWS's time
            with self._lock:
                key = (record.account_id, record.region, record.name)
                if self._caches.get(key) is record:
                    del self._caches[key]

    def _modified(self, record: CacheRecord) -> None:
        with self._lock:
            if record.status == "modifying":
                record.status = "available"

    def _sample_loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with self._lock:
                live = [
                    (r, self._runtimes.get(r.owner))
                    for r in self._caches.values()
                    if r.status in ("available", "modifying")
                ]
            for record, runtime in live:
                if runtime is None:
                    continue
                try:
                    self._sample(record, runtime)
                except Exception as error:
                    log.warning("cache %s: sampling failed (%s)", record.name, error)
                    close_quietly(runtime.monitor)
                    runtime.monitor = None

    def _sample(self, record: CacheRecord, runtime: CacheRuntime) -> None:
        import redis  # the client library; imported here so the daemon starts without it

        if runtime.monitor is None:
            runtime.monitor = redis.Redis(
                host=record.host, port=record.port, ssl=True, ssl_ca_certs=runtime.ca_file,
                socket_timeout=5,
            )  # fmt: skip
            if runtime.sampler is None:
                reads, writes = command_families(runtime.monitor)
                runtime.sampler = CacheSampler(
                    record.name, publisher_for(self.cloud.metrics, record.name), reads, writes
                )
            runtime.sampler.own_connections += 1
        info, size = read_info(runtime.monitor)
        runtime.sampler.sample(info, size)

    # ----- helpers ----------------------------------------------------------------------

    def _network(
        self, params: dict[str, Any], context: RequestContext
    ) -> tuple[list[str], list[str]]:
        """The security groups and subnets given (checked), else the default VPC's."""
        groups = list(params.get("SecurityGroupIds") or [])
        subnets = list(params.get("SubnetIds") or [])
        region = context.region
        if groups:
            try:
                self.cloud.moto.call("ec2", "DescribeSecurityGroups", {"GroupIds": groups}, region)
            except ServiceError as error:
                raise invalid(f"Some security groups do not exist: {error.message}") from None
        if subnets and "SubnetIds" in params:
            try:
                self.cloud.moto.call("ec2", "DescribeSubnets", {"SubnetIds": subnets}, region)
            except ServiceError as error:
                raise ServiceError("InvalidSubnet", error.message) from None
        if not groups or not subnets:
            with contextlib.suppress(ServiceError, KeyError, IndexError):
                vpcs = self.cloud.moto.call(
                    "ec2", "DescribeVpcs",
                    {"Filters": [{"Name": "is-default", "Values": ["true"]}]}, region,
                )["Vpcs"]  # fmt: skip
                vpc = vpcs[0]["VpcId"]
                in_vpc = {"Name": "vpc-id", "Values": [vpc]}
                if not groups:
                    found = self.cloud.moto.call(
                        "ec2", "DescribeSecurityGroups",
                        {"Filters": [in_vpc, {"Name": "group-name", "Values": ["default"]}]},
                        region,
                    )["SecurityGroups"]  # fmt: skip
                    groups = [g["GroupId"] for g in found[:1]]
                if not subnets:
                    found = self.cloud.moto.call(
                        "ec2", "DescribeSubnets", {"Filters": [in_vpc]}, region
                    )["Subnets"]
                    subnets = [s["SubnetId"] for s in found[:3]]
        return groups, subnets

    def _tagged(self, params: dict[str, Any], context: RequestContext) -> CacheRecord | None:
        """The serverless cache an ARN names; None for other resources (moto's)."""
        arn = params.get("ResourceName", "")
        parts = arn.split(":")
        if len(parts) < 7 or parts[5] != "serverlesscache":
            return None
        if parts[0] != "arn" or parts[2] != "elasticache":
            raise ServiceError("InvalidARN", f"{arn} is not a valid ARN.")
        return self._get(context, parts[6])

    def _tag_list(self, record: CacheRecord) -> dict[str, Any]:
        with self._lock:
            return {"TagList": [{"Key": k, "Value": v} for k, v in record.tags.items()]}

    @staticmethod
    def _key(context: RequestContext, name: str) -> tuple[str, str, str]:
        return (context.account_id, context.region, name.lower())

    def _get(self, context: RequestContext, name: str) -> CacheRecord:
        with self._lock:
            record = self._caches.get(self._key(context, name))
        if record is None:
            raise not_found(name)
        return record
