"""A serverless cache's record: AWS's checks on the parameters and its ServerlessCache shape.

Shapes and limits follow the API reference
(https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateServerlessCache.html
and API_CacheUsageLimits.html).
"""

from __future__ import annotations

import datetime
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from ..protocols import ServiceError

READER_OFFSET = 1  # the reader endpoint is the next port: 6379 then 6380
MAX_CACHES = 40  # serverless caches per account and region
MAX_TAGS = 50
ENGINES = {"valkey": {"7": "7.2", "8": "8.0"}, "redis": {"7": "7.1"}}
DEFAULT_MAJOR = {"valkey": "8", "redis": "7"}
DATA_GB = (1, 5000)
ECPU = (1000, 15_000_000)
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_DIRECTIONS = {
    "east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


@dataclass
class CacheRecord:
    """One serverless cache as the provider keeps it."""

    name: str
    engine: str
    major: str
    region: str
    account_id: str
    hostname: str
    description: str = ""
    usage_limits: dict[str, Any] | None = None
    security_group_ids: list[str] = field(default_factory=list)
    subnet_ids: list[str] = field(default_factory=list)
    snapshot_retention_limit: int = 0
    daily_snapshot_time: str = "04:00"
    kms_key_id: str | None = None
    user_group_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "creating"
    created: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    host: str | None = None  # the endpoint's address once chosen
    port: int | None = None
    reader_port: int | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:elasticache:{self.region}:{self.account_id}:serverlesscache:{self.name}"

    @property
    def owner(self) -> str:
        """The engine manager's owner name of this cache's Redis server."""
        return f"elasticache:{self.account_id}:{self.region}:{self.name}"

    def shape(self) -> dict[str, Any]:
        """The ServerlessCache structure of the API."""
        shape: dict[str, Any] = {
            "ServerlessCacheName": self.name,
            "Description": self.description,
            "CreateTime": self.created,
            "Status": self.status,
            "Engine": self.engine,
            "MajorEngineVersion": self.major,
            "FullEngineVersion": ENGINES[self.engine][self.major],
            "SecurityGroupIds": list(self.security_group_ids),
            "ARN": self.arn,
            "SubnetIds": list(self.subnet_ids),
            "SnapshotRetentionLimit": self.snapshot_retention_limit,
            "DailySnapshotTime": self.daily_snapshot_time,
            "NetworkType": "ipv4",
        }
        if self.usage_limits:
            shape["CacheUsageLimits"] = self.usage_limits
        if self.kms_key_id:
            shape["KmsKeyId"] = self.kms_key_id
        if self.user_group_id:
            shape["UserGroupId"] = self.user_group_id
        if self.host and self.port:  # AWS shows endpoints once the cache has them
            shape["Endpoint"] = {"Address": self.host, "Port": self.port}
            shape["ReaderEndpoint"] = {"Address": self.host, "Port": self.reader_port}
        return shape


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def not_found(name: str) -> ServiceError:
    return ServiceError("ServerlessCacheNotFoundFault", f"Serverless cache {name} not found.", 404)


def wrong_state(name: str, status: str) -> ServiceError:
    return ServiceError(
        "InvalidServerlessCacheStateFault",
        f"Serverless cache {name} is not in available state (current state: {status}).",
    )


def check_name(name: str) -> str:
    """AWS stores the name lowercase: a letter, then letters, digits, single hyphens; 1-40."""
    lowered = (name or "").lower()
    if not 1 <= len(lowered) <= 40 or not _NAME.fullmatch(lowered):
        raise invalid(
            "Serverless cache name must begin with a letter, contain only ASCII letters, "
            "digits and hyphens, not end with a hyphen or contain two consecutive hyphens, "
            "and be at most 40 characters long."
        )
    return lowered


def check_engine(engine: str, major: str | None) -> tuple[str, str]:
    """(engine, major version): Valkey and Redis OSS; memcached is not served locally."""
    engine = (engine or "").lower()
    if engine == "memcached":
        raise invalid("The local cloud serves Valkey and Redis OSS serverless caches only.")
    if engine not in ENGINES:
        raise invalid(f"Invalid engine: {engine}. Valid engines are valkey, redis, memcached.")
    major = str(major or DEFAULT_MAJOR[engine])
    if major not in ENGINES[engine]:
        raise invalid(f"Invalid major engine version {major} for engine {engine}.")
    return engine, major


def check_limits(limits: dict[str, Any] | None) -> dict[str, Any] | None:
    """CacheUsageLimits: DataStorage in GB 1..5000, ECPUPerSecond 1,000..15,000,000, min <= max."""
    if not limits:
        return None
    data = limits.get("DataStorage")
    if data is not None:
        if data.get("Unit") != "GB":
            raise invalid("DataStorage Unit must be GB.")
        _range("DataStorage", data, *DATA_GB)
    ecpu = limits.get("ECPUPerSecond")
    if ecpu is not None:
        _range("ECPUPerSecond", ecpu, *ECPU)
    return {k: dict(v) for k, v in limits.items() if v is not None}


def _range(what: str, limit: dict[str, Any], low: int, high: int) -> None:
    maximum, minimum = limit.get("Maximum"), limit.get("Minimum")
    if maximum is None and minimum is None:
        raise invalid(f"{what} must specify a Maximum or a Minimum.")
    for label, value in (("Maximum", maximum), ("Minimum", minimum)):
        if value is not None and not low <= value <= high:
            raise invalid(f"{what} {label} must be between {low} and {high}.")
    if maximum is not None and minimum is not None and minimum > maximum:
        raise invalid(f"{what} Minimum cannot be greater than Maximum.")


def check_tags(tags: list[dict[str, str]] | None, existing: int = 0) -> dict[str, str]:
    found = {t["Key"]: t.get("Value", "") for t in tags or []}
    if existing + len(found) > MAX_TAGS:
        raise ServiceError(
            "TagQuotaPerResourceExceeded",
            f"The request cannot be processed because it would cause the resource to have "
            f"more than the allowed number of tags. The maximum allowed is {MAX_TAGS}.",
        )
    return found


def hostname(name: str, region: str) -> str:
    """`<name>-<6 characters>.serverless.<region code>.cache.amazonaws.com`, as AWS names them."""
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return f"{name}-{suffix}.serverless.{region_code(region)}.cache.amazonaws.com"


def region_code(region: str) -> str:
    """us-east-1 -> use1, ap-southeast-2 -> apse2."""
    parts = region.split("-")
    if len(parts) < 3:
        return region.replace("-", "")
    return parts[0] + "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1]) + parts[-1]
