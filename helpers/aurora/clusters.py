"""Aurora MySQL Serverless v2 clusters: get-or-create, Data API, capacity from CloudWatch.

`ensure_cluster` builds, in the order AWS needs them, a DB subnet group over the default
VPC's subnets, an Aurora MySQL cluster with a Serverless v2 scaling range and an
RDS-managed master password (a Secrets Manager secret), one `db.serverless` writer, and
turns on the Data API. It is get-or-create: a re-run finds everything and fixes only what
differs. Each step waits as long as `lab.pace` says: minutes on AWS, seconds locally.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from .. import naming
from ..costs import Price
from ..lab import Lab
from ..pacing import Wait
from ..waiting import wait_for
from .lookup import (
    CLUSTER_KIND,
    CLUSTERS,
    INSTANCE_KIND,
    INSTANCES,
    SUBNET_GROUP_KIND,
    SUBNET_GROUPS,
    Listing,
    describe,
)

ENGINE = "aurora-mysql"
# Used when describe_db_engine_versions gives nothing usable (moto answers it with HTTP 500):
# the first Aurora MySQL version with auto-pause (min 0 ACU) and a Data API for Serverless v2.
FALLBACK_ENGINE_VERSION = "8.0.mysql_aurora.3.08.0"
MASTER_USERNAME = "admin"
INSTANCE_CLASS = "db.serverless"
MAX_ACU = 256  # recent engine versions; older ones stop at 128 (ServerlessV2FeaturesSupport)
AUTO_PAUSE_SECONDS = (300, 86_400)
WRITER_SUFFIX = "-writer"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_DATABASE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FAILED = {"failed", "inaccessible-encryption-credentials", "storage-full"}  # + "incompatible-*"


@dataclass(frozen=True)
class ClusterInfo:
    """What a notebook needs to know about a cluster (from describe_db_clusters)."""

    identifier: str
    arn: str
    secret_arn: str | None  # the RDS-managed master secret (username + password)
    endpoint: str  # the writer endpoint: a DNS name on AWS, 127.0.0.1 locally
    port: int
    database: str
    engine_version: str
    writer: str | None  # the writer instance's identifier
    min_acu: float
    max_acu: float
    seconds_until_auto_pause: int | None
    data_api: bool  # HttpEndpointEnabled
    status: str


def ensure_cluster(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    min_acu: float,
    max_acu: float = 4,
    seconds_until_auto_pause: int = 300,
    database: str = "labdb",
    engine_version: str | None = None,
    data_api: bool = True,
) -> ClusterInfo:
    """Get or create a Serverless v2 Aurora MySQL cluster with a writer and the Data API."""
    scaling = scaling_configuration(min_acu, max_acu, seconds_until_auto_pause)
    check_database_name(database)
    identifier = cluster_identifier(lab, pattern, name)
    writer_id = identifier + WRITER_SUFFIX
    rds = lab.client("rds")
    group = ensure_subnet_group(lab, pattern, name)

    cluster = describe(rds, CLUSTERS, identifier)
    if cluster is None:
        version = engine_version or pick_engine_version(lab, min_acu, max_acu)
        rds.create_db_cluster(
            DBClusterIdentifier=identifier,
            Engine=ENGINE,
            EngineVersion=version,
            ServerlessV2ScalingConfiguration=scaling,
            ManageMasterUserPassword=True,
            MasterUsername=MASTER_USERNAME,
            DatabaseName=database,
            DBSubnetGroupName=group,
            StorageEncrypted=True,
            DeletionProtection=False,
            Tags=naming.tag_list(lab.tags(pattern)),
        )
        lab.ledger.record(CLUSTER_KIND, identifier, pattern)
        step = "creating"
    else:
        _check_existing(cluster, database, engine_version)
        step = "checking"
        if cluster["Status"] == "stopped":  # Serverless v2 clusters can be stopped for 7 days
            rds.start_db_cluster(DBClusterIdentifier=identifier)
            step = "starting"
    pace = lab.pace.aurora_cluster_created if step == "creating" else lab.pace.aurora_cluster_ready
    cluster = _wait_available(lab, CLUSTERS, identifier, f"cluster {identifier} ({step})", pace)

    if not _scaling_matches(cluster.get("ServerlessV2ScalingConfiguration", {}), scaling):
        rds.modify_db_cluster(
            DBClusterIdentifier=identifier,
            ServerlessV2ScalingConfiguration=scaling,
            ApplyImmediately=True,
        )
        lab.ledger.record(CLUSTER_KIND, identifier, pattern, "updated scaling")
        cluster = _wait_available(
            lab,
            CLUSTERS,
            identifier,
            f"cluster {identifier} (modifying)",
            lab.pace.aurora_cluster_ready,
        )

    ensure_writer(lab, pattern, identifier, writer_id)
    if data_api and not cluster.get("HttpEndpointEnabled"):
        # Serverless v2 and provisioned clusters: EnableHttpEndpoint. ModifyDBCluster's
        # EnableHttpEndpoint parameter is for Serverless v1 only.
        rds.enable_http_endpoint(ResourceArn=cluster["DBClusterArn"])
        lab.ledger.record(CLUSTER_KIND, identifier, pattern, "enabled Data API")
        wait_for(
            lambda: _http_endpoint_enabled(rds, identifier),
            what=f"Data API on {identifier}",
            pace=lab.pace.aurora_data_api_enabled,
        )
    return cluster_info_from(describe(rds, CLUSTERS, identifier) or cluster)


def cluster_info(lab: Lab, pattern: str, name: str) -> ClusterInfo | None:
    """The cluster `ensure_cluster(lab, pattern, name, ...)` made, or None if there is none."""
    identifier = cluster_identifier(lab, pattern, name)
    cluster = describe(lab.client("rds"), CLUSTERS, identifier)
    return None if cluster is None else cluster_info_from(cluster)


def cluster_info_from(cluster: dict[str, Any]) -> ClusterInfo:
    """A ClusterInfo from one describe_db_clusters entry."""
    scaling = cluster.get("ServerlessV2ScalingConfiguration", {})
    writers = [m for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")]
    pause = scaling.get("SecondsUntilAutoPause")
    return ClusterInfo(
        identifier=cluster["DBClusterIdentifier"],
        arn=cluster["DBClusterArn"],
        secret_arn=cluster.get("MasterUserSecret", {}).get("SecretArn"),
        endpoint=cluster.get("Endpoint", ""),
        port=int(cluster.get("Port", 3306)),
        database=cluster.get("DatabaseName", ""),
        engine_version=cluster.get("EngineVersion", ""),
        writer=writers[0]["DBInstanceIdentifier"] if writers else None,
        min_acu=float(scaling.get("MinCapacity", 0)),
        max_acu=float(scaling.get("MaxCapacity", 0)),
        seconds_until_auto_pause=int(pause) if pause is not None else None,
        data_api=bool(cluster.get("HttpEndpointEnabled")),
        status=cluster.get("Status", ""),
    )


def scaling_configuration(
    min_acu: float, max_acu: float, seconds_until_auto_pause: int
) -> dict[str, Any]:
    """Validate the capacity range and build ServerlessV2ScalingConfiguration."""
    _check_acu("min_acu", min_acu, 0.5, "0 (auto-pause) or 0.5 to max_acu in steps of 0.5")
    _check_acu("max_acu", max_acu, 1, "1 to 256 in steps of 0.5 (128 on older engine versions)")
    if min_acu > max_acu:
        raise ValueError(f"min_acu ({min_acu}) must not be larger than max_acu ({max_acu})")
    if isinstance(seconds_until_auto_pause, bool) or not isinstance(seconds_until_auto_pause, int):
        raise ValueError(
            f"seconds_until_auto_pause must be a whole number of seconds, "
            f"not {seconds_until_auto_pause!r}"
        )
    low, high = AUTO_PAUSE_SECONDS
    if not low <= seconds_until_auto_pause <= high:
        raise ValueError(
            f"seconds_until_auto_pause must be between {low} and {high} seconds "
            f"(5 minutes to 1 day), not {seconds_until_auto_pause}"
        )
    scaling: dict[str, Any] = {"MinCapacity": float(min_acu), "MaxCapacity": float(max_acu)}
    if min_acu == 0:  # AWS only accepts SecondsUntilAutoPause when the cluster can pause
        scaling["SecondsUntilAutoPause"] = seconds_until_auto_pause
    return scaling


def _check_acu(field: str, value: float, low: float, allowed: str) -> None:
    """Raise ValueError naming the field and its allowed values (0 is always allowed for min)."""
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if field == "min_acu" and number and value == 0:
        return
    if not number or not low <= value <= MAX_ACU or (value * 2) % 1 != 0:
        raise ValueError(f"{field} must be {allowed}, not {value!r}")


def check_database_name(database: str) -> str:
    """Return the initial database name, or raise ValueError saying what MySQL allows."""
    if not isinstance(database, str) or not _DATABASE.match(database):
        raise ValueError(
            f"database must be 1 to 64 letters, digits or underscores starting with a "
            f"letter (e.g. 'labdb'), not {database!r}"
        )
    return database


def cluster_identifier(lab: Lab, pattern: str, name: str) -> str:
    """The cluster's identifier; short enough that `<identifier>-writer` fits in 63."""
    identifier = lab.name(pattern, name, 63 - len(WRITER_SUFFIX))
    if not _IDENTIFIER.match(identifier) or "--" in identifier or identifier.endswith("-"):
        raise ValueError(
            f"name {name!r} gives the cluster identifier {identifier!r}, which RDS refuses: "
            "use lowercase letters, digits and single hyphens, not ending in a hyphen"
        )
    return identifier


def pick_engine_version(lab: Lab, min_acu: float, max_acu: float = 4) -> str:
    """The newest Aurora MySQL 3.x version for Serverless v2 that fits the capacity range."""
    try:
        pages = lab.client("rds").get_paginator("describe_db_engine_versions")
        versions = [v for page in pages.paginate(Engine=ENGINE) for v in page["DBEngineVersions"]]
    except (ClientError, BotoCoreError, ResponseParserError):
        versions = []  # moto: HTTP 500; an account without rds:DescribeDBEngineVersions
    usable = [v for v in versions if _usable_version(v, min_acu, max_acu)]
    if not usable:
        return FALLBACK_ENGINE_VERSION
    return max(usable, key=lambda v: _version_key(v["EngineVersion"]))["EngineVersion"]


def ensure_subnet_group(lab: Lab, pattern: str, name: str) -> str:
    """Get or create the cluster's DB subnet group over the default VPC's subnets."""
    group_name = lab.name(pattern, f"{name}-subnets", 255)
    rds = lab.client("rds")
    if describe(rds, SUBNET_GROUPS, group_name) is not None:
        return group_name
    subnets = lab.client("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    zones = {subnet["AvailabilityZone"] for subnet in subnets}
    if len(zones) < 2:
        raise RuntimeError(
            f"Aurora needs subnets in at least two Availability Zones, and the default VPC "
            f"in {lab.region} has default subnets in {len(zones)}. Create the default VPC "
            "(`aws ec2 create-default-vpc`) or use a region that has one."
        )
    rds.create_db_subnet_group(
        DBSubnetGroupName=group_name,
        DBSubnetGroupDescription=f"Course pattern {pattern}: default VPC subnets for {name}",
        SubnetIds=sorted(subnet["SubnetId"] for subnet in subnets),
        Tags=naming.tag_list(lab.tags(pattern)),
    )
    lab.ledger.record(SUBNET_GROUP_KIND, group_name, pattern)
    return group_name


def ensure_writer(lab: Lab, pattern: str, cluster_id: str, writer_id: str) -> dict[str, Any]:
    """Get or create the cluster's db.serverless writer instance and wait until available."""
    rds = lab.client("rds")
    instance = describe(rds, INSTANCES, writer_id)
    if instance is None:
        rds.create_db_instance(
            DBInstanceIdentifier=writer_id,
            DBClusterIdentifier=cluster_id,
            Engine=ENGINE,
            DBInstanceClass=INSTANCE_CLASS,
            PubliclyAccessible=False,
            Tags=naming.tag_list(lab.tags(pattern)),
        )
        lab.ledger.record(INSTANCE_KIND, writer_id, pattern)
    elif instance.get("DBClusterIdentifier") != cluster_id:
        raise ValueError(
            f"instance {writer_id} belongs to cluster {instance.get('DBClusterIdentifier')}, "
            f"not {cluster_id}: tear it down (helpers.cleanup.teardown(lab, pattern={pattern!r}))"
        )
    step = "creating" if instance is None else "checking"
    what = f"writer {writer_id} ({step})"
    return _wait_available(lab, INSTANCES, writer_id, what, lab.pace.aurora_writer_ready)


def _check_existing(cluster: dict[str, Any], database: str, engine_version: str | None) -> None:
    """Refuse what cannot be changed in place, with the way forward."""
    identifier = cluster["DBClusterIdentifier"]
    fix = "tear it down first (helpers.cleanup.teardown) or pick another name"
    if cluster["Status"] == "deleting":
        raise RuntimeError(
            f"cluster {identifier} is being deleted; wait a few minutes and re-run this cell"
        )
    if cluster.get("Engine") != ENGINE:
        raise ValueError(f"cluster {identifier} runs {cluster.get('Engine')}, not {ENGINE}: {fix}")
    if cluster.get("DatabaseName", database) != database:
        raise ValueError(
            f"cluster {identifier} was created with database {cluster.get('DatabaseName')!r}, "
            f"not {database!r}; the initial database cannot be renamed: {fix}"
        )
    if engine_version and cluster.get("EngineVersion") != engine_version:
        raise ValueError(
            f"cluster {identifier} runs {cluster.get('EngineVersion')}, not {engine_version}; "
            f"the course does not upgrade engines in place: {fix}"
        )


def _scaling_matches(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when the cluster's capacity range (and auto-pause delay, if pausing) is as wanted."""
    return all(
        current.get(key) is not None and float(current[key]) == float(value)
        for key, value in wanted.items()
    )


def _usable_version(version: dict[str, Any], min_acu: float, max_acu: float) -> bool:
    """An available 3.x version with provisioned mode and Serverless v2 covering the range."""
    support = version.get("ServerlessV2FeaturesSupport")
    return (
        version.get("EngineVersion", "").startswith("8.0.mysql_aurora.3.")
        and version.get("Status", "available") == "available"
        and "provisioned" in version.get("SupportedEngineModes", [])
        and bool(support)
        and float(support.get("MinCapacity", 0.5)) <= min_acu
        and float(support.get("MaxCapacity", MAX_ACU)) >= max_acu
    )


def _version_key(version: str) -> tuple[int, ...]:
    """'8.0.mysql_aurora.3.08.2' -> (3, 8, 2), for picking the newest."""
    return tuple(int(part) for part in re.findall(r"\d+", version.rpartition("mysql_aurora.")[2]))


def _http_endpoint_enabled(rds: Any, identifier: str) -> bool:
    """True once describe shows the Data API enabled."""
    cluster = describe(rds, CLUSTERS, identifier)
    return bool(cluster and cluster.get("HttpEndpointEnabled"))


def _wait_available(
    lab: Lab, listing: Listing, identifier: str, what: str, pace: Wait
) -> dict[str, Any]:
    """Poll describe until the status is `available` (not a boto3 waiter: progress shows)."""
    rds = lab.client("rds")
    status_key = "Status" if listing is CLUSTERS else "DBInstanceStatus"

    def check() -> dict[str, Any] | None:
        resource = describe(rds, listing, identifier)
        if resource is None:
            raise RuntimeError(f"{what}: it disappeared (deleted by a teardown?); re-run the cell")
        status = resource.get(status_key, "")
        if status in _FAILED or status.startswith("incompatible-"):
            raise RuntimeError(
                f"{what}: status {status!r}. Look at the RDS console's events for the reason, "
                "then tear down and re-run."
            )
        return resource if status == "available" else None

    return wait_for(
        check,
        what=what,
        hint="AWS sometimes needs longer: re-run this cell to keep waiting; nothing was lost.",
        pace=pace,
    )


def capacity(lab: Lab, cluster: ClusterInfo, *, over_seconds: int = 1) -> float | None:
    """The highest ServerlessDatabaseCapacity (ACU) over the last `over_seconds`, or None.

    None until CloudWatch holds that much data: AWS reports capacity per minute, the local
    cloud per second (`lab.pace.metric_period`).
    """
    needed = max(1, over_seconds // lab.pace.metric_period)
    span = dt.timedelta(seconds=max(600, 3 * needed * lab.pace.metric_period))
    newest_first = list(_capacity_maxima(lab, cluster, dt.datetime.now(dt.UTC) - span).values())
    values = newest_first[::-1][:needed]
    return max(values) if len(values) == needed else None


def capacity_since(lab: Lab, cluster: ClusterInfo, since: dt.datetime) -> dict[dt.datetime, float]:
    """ServerlessDatabaseCapacity maxima per `lab.pace.metric_period` from `since`, oldest first.

    Only the periods CloudWatch already holds: on AWS they arrive a minute or two late.
    """
    period = lab.pace.metric_period
    return _capacity_maxima(lab, cluster, since - dt.timedelta(seconds=since.timestamp() % period))


def _capacity_maxima(
    lab: Lab, cluster: ClusterInfo, start: dt.datetime
) -> dict[dt.datetime, float]:
    """Per-period maxima of the cluster's capacity from `start` to now, oldest first."""
    period = lab.pace.metric_period
    metric = {
        "Namespace": "AWS/RDS",
        "MetricName": "ServerlessDatabaseCapacity",
        "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cluster.identifier}],
    }
    response = lab.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {"Id": "acu", "MetricStat": {"Metric": metric, "Period": period, "Stat": "Maximum"}}
        ],
        StartTime=start,
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(60, period)),
        ScanBy="TimestampAscending",
    )
    result = response["MetricDataResults"][0]
    return dict(zip(result["Timestamps"], result["Values"], strict=True))


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "aurora_acu_hour": Price(0.12, "ACU-hour", "Aurora Serverless v2, Aurora Standard"),
    "aurora_storage_gb_month": Price(0.10, "GB-month", "Aurora Standard storage"),
}
