"""What the RDS Proxy provider remembers per proxy, its parameter checks and AWS's errors."""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..protocols import ServiceError
from .listener import ProxyListener
from .runtime import ProxyRuntime

CREATING_SECONDS = 2.0  # a proxy reports `creating` this long, so waiting code is exercised
REGISTERING_SECONDS = 1.0
QUOTA = 20  # proxies per account and region
DEFAULT_POOL = {
    "MaxConnectionsPercent": 100,
    "MaxIdleConnectionsPercent": 50,
    "ConnectionBorrowTimeout": 120,
    "SessionPinningFilters": [],
}
_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-))*")
NO_CREDENTIALS = "Proxy does not have any registered credentials"


@dataclass
class Health:
    """A target's TargetHealth."""

    state: str = "REGISTERING"
    reason: str | None = None
    description: str | None = None

    def shape(self) -> dict[str, str]:
        found = {"State": self.state}
        if self.reason:
            found["Reason"] = self.reason
        if self.description:
            found["Description"] = self.description
        return found


@dataclass
class ProxyRecord:
    """One proxy: its settings beyond moto's record, its target and its live parts."""

    name: str
    arn: str
    region: str
    account_id: str
    engine_family: str
    auth: list[dict[str, Any]]
    role_arn: str
    require_tls: bool
    idle_client_timeout: int
    debug_logging: bool
    security_groups: list[str] | None
    default_auth_scheme: str | None
    target_group_arn: str
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    pool_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_POOL))
    group_updated: float = field(default_factory=time.time)
    cluster: str | None = None  # the registered cluster's identifier
    instances: list[str] = field(default_factory=list)
    registered_at: float = 0.0
    health: Health = field(default_factory=Health)
    max_connections: int | None = None  # the cluster's, read from its server
    runtime: ProxyRuntime | None = None
    listener: ProxyListener | None = None
    deleting: bool = False
    creating_s: float = CREATING_SECONDS  # longer under the AWS timing profile
    registering_s: float = REGISTERING_SECONDS

    @property
    def status(self) -> str:
        if self.deleting:
            return "deleting"
        if self.listener is None and self.engine_family == "MYSQL":
            return "creating"
        return "available" if time.time() - self.created >= self.creating_s else "creating"

    @property
    def iam_required(self) -> bool:
        return any(a.get("IAMAuth") == "REQUIRED" for a in self.auth)

    def secret_arns(self) -> list[str]:
        return [a["SecretArn"] for a in self.auth if a.get("SecretArn")]

    def patch(self, proxy: dict[str, Any]) -> dict[str, Any]:
        """moto's DBProxy with this proxy's own values."""
        proxy["Status"] = self.status
        proxy["Auth"] = [_auth_info(a) for a in self.auth]
        proxy["RoleArn"] = self.role_arn
        proxy["RequireTLS"] = self.require_tls
        proxy["IdleClientTimeout"] = self.idle_client_timeout
        proxy["DebugLogging"] = self.debug_logging
        if self.security_groups is not None:
            proxy["VpcSecurityGroupIds"] = list(self.security_groups)
        if self.default_auth_scheme:
            proxy["DefaultAuthScheme"] = self.default_auth_scheme
        if self.runtime is not None:
            proxy["Endpoint"] = self.runtime.host
        proxy.setdefault("EndpointNetworkType", "IPV4")
        proxy.setdefault("TargetConnectionNetworkType", "IPV4")
        proxy["CreatedDate"] = _when(self.created)
        proxy["UpdatedDate"] = _when(self.updated)
        return proxy

    def target_group(self) -> dict[str, Any]:
        """The proxy's one target group, `default`."""
        return {
            "DBProxyName": self.name,
            "TargetGroupName": "default",
            "TargetGroupArn": self.target_group_arn,
            "IsDefault": True,
            "Status": "available",
            "ConnectionPoolConfig": dict(self.pool_config),
            "CreatedDate": _when(self.created),
            "UpdatedDate": _when(self.group_updated),
        }

    def targets(self, host: str, port: int) -> list[dict[str, Any]]:
        """The TRACKED_CLUSTER target and one RDS_INSTANCE target per instance."""
        if self.cluster is None:
            return []
        health = self.current_health().shape()
        account, region = self.account_id, self.region
        found: list[dict[str, Any]] = [
            {
                "TargetArn": f"arn:aws:rds:{region}:{account}:cluster:{self.cluster}",
                "TrackedClusterId": self.cluster,
                "RdsResourceId": self.cluster,
                "Port": 0,
                "Type": "TRACKED_CLUSTER",
            }
        ]
        for instance in self.instances:
            found.append(
                {
                    "TargetArn": f"arn:aws:rds:{region}:{account}:db:{instance}",
                    "Endpoint": host,
                    "TrackedClusterId": self.cluster,
                    "RdsResourceId": instance,
                    "Port": port,
                    "Type": "RDS_INSTANCE",
                    "Role": "READ_WRITE",
                    "TargetHealth": dict(health),
                }
            )
        return found

    def current_health(self) -> Health:
        if time.time() - self.registered_at < self.registering_s:
            return Health()
        return self.health


def check_create(params: dict[str, Any], existing: int) -> None:
    """Refuse what CreateDBProxy would refuse before moto sees it."""
    check_name(params["DBProxyName"], "DBProxyName")
    if existing >= QUOTA:
        raise ServiceError(
            "DBProxyQuotaExceededFault",
            "Your request would exceed the maximum number of DB proxies allowed.",
        )
    if not params.get("Auth") and params.get("DefaultAuthScheme") != "IAM_AUTH":
        raise invalid(
            "Auth must contain at least one UserAuthConfig unless DefaultAuthScheme is IAM_AUTH."
        )
    check_auth(params.get("Auth") or [], params["EngineFamily"])
    check_idle(params.get("IdleClientTimeout"))


def check_name(name: str, parameter: str) -> None:
    if not (1 <= len(name) <= 63 and _NAME.fullmatch(name) and not name.endswith("-")):
        raise invalid(
            f"The parameter {parameter} is not a valid identifier. Identifiers must begin with "
            "a letter; must contain only ASCII letters, digits, and hyphens; and must not end "
            "with a hyphen or contain two consecutive hyphens."
        )


def check_auth(auth: list[dict[str, Any]], engine_family: str) -> None:
    for entry in auth:
        if entry.get("AuthScheme", "SECRETS") != "SECRETS":
            raise invalid("The only supported AuthScheme is SECRETS.")
        if not entry.get("SecretArn"):
            raise invalid("A UserAuthConfig with AuthScheme SECRETS needs a SecretArn.")
        if entry.get("IAMAuth") == "ENABLED" and engine_family != "SQLSERVER":
            raise invalid("IAMAuth ENABLED is supported only for the SQLSERVER engine family.")


def check_idle(value: Any) -> None:
    if value is not None and not 1 <= int(value) <= 28800:
        raise invalid("IdleClientTimeout must be between 1 and 28800 seconds.")


def check_pool(config: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The target group's new ConnectionPoolConfig, or InvalidParameterValue."""
    merged = {**current, **{k: v for k, v in config.items() if v is not None}}
    most = int(merged["MaxConnectionsPercent"])
    if not 1 <= most <= 100:
        raise invalid("MaxConnectionsPercent must be between 1 and 100.")
    idle = int(merged["MaxIdleConnectionsPercent"])
    if not 0 <= idle <= most:
        raise invalid("MaxIdleConnectionsPercent must be between 0 and MaxConnectionsPercent.")
    if not 0 <= int(merged["ConnectionBorrowTimeout"]) <= 300:
        raise invalid("ConnectionBorrowTimeout must be between 0 and 300 seconds.")
    filters = merged.get("SessionPinningFilters") or []
    if any(f != "EXCLUDE_VARIABLE_SETS" for f in filters):
        raise invalid("The only supported SessionPinningFilters value is EXCLUDE_VARIABLE_SETS.")
    if merged.get("InitQuery") == "":
        merged.pop("InitQuery")
    return merged


def check_group(params: dict[str, Any]) -> None:
    """Every proxy has one target group, `default`."""
    group = params.get("TargetGroupName")
    if group is not None and group != "default":
        raise ServiceError(
            "DBProxyTargetGroupNotFoundFault",
            f"The specified target group {group} doesn't exist.",
            404,
        )


def not_found(name: str) -> ServiceError:
    return ServiceError(
        "DBProxyNotFoundFault",
        f"The specified proxy name {name} doesn't correspond to a proxy owned by your Amazon "
        "Web Services account in the specified Amazon Web Services Region.",
        404,
    )


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def _auth_info(entry: dict[str, Any]) -> dict[str, Any]:
    info = {
        "AuthScheme": entry.get("AuthScheme", "SECRETS"),
        "SecretArn": entry.get("SecretArn"),
        "IAMAuth": entry.get("IAMAuth", "DISABLED"),
        "ClientPasswordAuthType": entry.get("ClientPasswordAuthType", "MYSQL_NATIVE_PASSWORD"),
    }
    for key in ("Description", "UserName"):
        if entry.get(key):
            info[key] = entry[key]
    return {k: v for k, v in info.items() if v is not None}


def _when(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
