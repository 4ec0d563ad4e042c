"""What the RDS provider remembers per Aurora MySQL cluster, and its parameter checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..protocols import ServiceError

ENGINE = "aurora-mysql"
LOCAL_HOST = "127.0.0.1"
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
_DATABASE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_RESERVED_USERS = {"rdsadmin", "rdsproxyadmin", "rdsrepladmin"}  # RDS's own users
# Aurora MySQL Serverless v2's default max_connections by the cluster's maximum ACU
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.setting-capacity.html#aurora-serverless-v2.max-connections).
MAX_CONNECTIONS_BY_MAX_ACU = (
    (1, 90),
    (4, 135),
    (8, 1000),
    (16, 2000),
    (32, 3000),
    (64, 4000),
    (128, 5000),
)
ENGINE_DEFAULT_MAX_CONNECTIONS = 151  # MariaDB's own default, for clusters without Serverless v2
_IDENTIFIER_RULE = (
    "Identifiers must begin with a letter; must contain only ASCII letters, digits, and "
    "underscores; and must not be a reserved word."
)


@dataclass(frozen=True)
class ClusterDatabase:
    """One local Aurora MySQL cluster as other providers (Data API, capacity) see it."""

    identifier: str
    arn: str
    host: str
    port: int
    master_username: str
    password: str = field(repr=False)  # current master password
    database: str | None  # DatabaseName
    http_endpoint_enabled: bool
    secret_arn: str | None  # the managed secret, if any
    instance_ids: tuple[str, ...]
    min_acu: float | None
    max_acu: float | None
    seconds_until_auto_pause: int | None
    engine_pid: int | None
    max_connections: int = ENGINE_DEFAULT_MAX_CONNECTIONS  # in force on the server now


@dataclass
class ClusterRecord:
    """The provider's mutable state of one cluster (guarded by the provider's lock)."""

    identifier: str
    arn: str
    region: str
    account_id: str
    owner: str  # the engine owner; stays the same when the cluster is renamed
    master_username: str
    password: str = field(repr=False)
    database: str | None
    secret_arn: str | None
    http_endpoint_enabled: bool
    scaling: dict[str, Any] = field(default_factory=dict)
    instance_ids: list[str] = field(default_factory=list)
    port: int | None = None  # None while the engine is starting
    engine_pid: int | None = None
    max_connections: int = ENGINE_DEFAULT_MAX_CONNECTIONS  # static: a reboot applies a change

    def named(self, region: str, account_id: str, identifier: str) -> bool:
        """Whether this is the cluster with that identifier (case-insensitive) there."""
        return (self.region, self.account_id, self.identifier) == (
            region,
            account_id,
            identifier.lower(),
        )

    def patch_cluster(self, cluster: dict[str, Any]) -> None:
        """Learn members and scaling from moto's description; answer with the local server."""
        self.instance_ids = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
        self.scaling = dict(cluster.get("ServerlessV2ScalingConfiguration") or {})
        cluster["Endpoint"] = cluster["ReaderEndpoint"] = LOCAL_HOST
        if self.port is None:
            cluster["Status"] = "creating"  # the server is still starting
        else:
            cluster["Port"] = self.port
        cluster["HttpEndpointEnabled"] = self.http_endpoint_enabled
        if cluster.get("MasterUserSecret"):
            cluster["MasterUserSecret"]["SecretStatus"] = "active"

    def patch_instance(self, instance: dict[str, Any]) -> None:
        """Remember one of this cluster's instances and point it at the cluster's server."""
        if instance["DBInstanceIdentifier"] not in self.instance_ids:
            self.instance_ids.append(instance["DBInstanceIdentifier"])
        if self.port is not None:
            instance["Endpoint"] = {
                **(instance.get("Endpoint") or {}),
                "Address": LOCAL_HOST,
                "Port": self.port,
            }

    def snapshot(self) -> ClusterDatabase:
        """A frozen copy for other providers."""
        pause = self.scaling.get("SecondsUntilAutoPause")
        return ClusterDatabase(
            identifier=self.identifier,
            arn=self.arn,
            host=LOCAL_HOST,
            port=self.port or 0,
            master_username=self.master_username,
            password=self.password,
            database=self.database,
            http_endpoint_enabled=self.http_endpoint_enabled,
            secret_arn=self.secret_arn,
            instance_ids=tuple(self.instance_ids),
            min_acu=_float(self.scaling.get("MinCapacity")),
            max_acu=_float(self.scaling.get("MaxCapacity")),
            seconds_until_auto_pause=int(pause) if pause is not None else None,
            engine_pid=self.engine_pid,
            max_connections=self.max_connections,
        )


def max_connections_for(scaling: dict[str, Any] | None) -> int:
    """Aurora MySQL max_connections for a scaling configuration: the row at or below MaxCapacity.

    AWS lists the value for 1, 4, 8, 16, 32, 64 and 128 ACU; a maximum between two rows gets
    the lower row's value, and one above 128 the last row's. Without Serverless v2 scaling the
    engine's default stays.
    """
    maximum = _float((scaling or {}).get("MaxCapacity"))
    if maximum is None:
        return ENGINE_DEFAULT_MAX_CONNECTIONS
    rows = [value for acu, value in MAX_CONNECTIONS_BY_MAX_ACU if acu <= maximum]
    return rows[-1] if rows else MAX_CONNECTIONS_BY_MAX_ACU[0][1]


def gets_server(params: dict[str, Any]) -> bool:
    """Whether a CreateDBCluster gets a local server: provisioned-mode aurora-mysql, primary."""
    return (
        params.get("Engine") == ENGINE
        and (params.get("EngineMode") or "provisioned") == "provisioned"
        and not params.get("GlobalClusterIdentifier")
        and not params.get("ReplicationSourceIdentifier")
    )


def engine_owner(account_id: str, region: str, identifier: str) -> str:
    """The engine manager's owner name of a cluster's MariaDB server."""
    return f"rds:{account_id}:{region}:cluster/{identifier}"


def check_names(username: str | None, database: str | None) -> None:
    """Refuse a MasterUsername or DatabaseName that Aurora MySQL would refuse."""
    if username and (not _USERNAME.fullmatch(username) or username.lower() in _RESERVED_USERS):
        raise invalid(f"The parameter MasterUsername is not a valid identifier. {_IDENTIFIER_RULE}")
    if database and not _DATABASE.fullmatch(database):
        raise invalid(f"The parameter DatabaseName is not a valid identifier. {_IDENTIFIER_RULE}")


def invalid(message: str) -> ServiceError:
    """RDS's InvalidParameterValue (400)."""
    return ServiceError("InvalidParameterValue", message)


def combination(message: str) -> ServiceError:
    """RDS's InvalidParameterCombination (400)."""
    return ServiceError("InvalidParameterCombination", message)


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None
