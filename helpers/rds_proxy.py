"""RDS Proxy for the course: network, role, proxy, targets, pool settings, and their teardown.

In the order AWS needs them:
1. `ensure_network`: two security groups in the cluster's VPC, one for the functions that
   connect (no inbound rules) and one for the proxy (MySQL's 3306 from the functions only),
   and one rule on the database's own security groups (3306 from the proxy only).
2. `ensure_proxy_role`: a role RDS assumes to read the database secret, and nothing else.
3. `ensure_proxy`: the proxy itself (TLS required, IAM authentication required), waited for.
4. `ensure_targets`: the cluster registered as the proxy's target, waited for until AVAILABLE.
5. `configure_pool`: the target group's connection pool settings.
6. `connect_statement`: the function's `rds-db:connect` permission for one database user.

Each step is get-or-create. Teardown (the `RESOURCE_KINDS` below) deletes the proxy after
the functions that use it, then the security groups, waiting on AWS for a VPC function's
network interfaces to go first: Lambda may take 20 to 40 minutes to release them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd
from botocore.config import Config
from botocore.exceptions import ClientError

from . import cleanup, ec2, iam, naming
from .costs import Price
from .lab import Lab
from .waiting import wait_for

KIND = "rds proxy"
CLIENT_GROUP_KIND = "rds proxy client security group"
PROXY_GROUP_KIND = "rds proxy security group"
CLIENT_GROUP_NAME = "proxy-clients"
PROXY_GROUP_NAME = "proxy"
MYSQL_PORT = 3306
TARGET_GROUP = "default"  # every proxy has exactly one target group, named default
# Aurora MySQL Serverless v2's max_connections by maximum ACU, from
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.setting-capacity.html#aurora-serverless-v2.max-connections
MAX_CONNECTIONS_BY_MAX_ACU = (
    (1, 90),
    (4, 135),
    (8, 1000),
    (16, 2000),
    (32, 3000),
    (64, 4000),
    (128, 5000),
)
_UNHEALTHY = "UNAVAILABLE"
PINNED = "pinned"  # the ledger's action for a storm that pinned sessions through the proxy


@dataclass(frozen=True)
class ProxyNetwork:
    """Where the proxy lives and who may reach it."""

    vpc_id: str
    subnet_ids: list[str]  # at least two Availability Zones, as RDS Proxy requires
    client_group_id: str  # for the functions that connect to the proxy
    proxy_group_id: str  # the proxy's own: 3306 from the client group only
    database_group_ids: list[str]  # the cluster's: 3306 from the proxy group added


@dataclass(frozen=True)
class ProxyInfo:
    """What a notebook needs to know about a proxy (from describe_db_proxies)."""

    name: str
    arn: str
    resource_id: str  # prx-..., the name IAM policies use for rds-db:connect
    endpoint: str  # a DNS name on AWS, a loopback address locally
    port: int
    status: str
    require_tls: bool
    iam_auth: str  # REQUIRED or DISABLED
    secret_arn: str


def max_connections(max_acu: float) -> int:
    """Aurora MySQL Serverless v2's default max_connections for a cluster's maximum ACU.

    The value is static: it follows a change of the maximum only after a reboot.
    """
    rows = [value for acu, value in MAX_CONNECTIONS_BY_MAX_ACU if acu <= max_acu]
    return rows[-1] if rows else MAX_CONNECTIONS_BY_MAX_ACU[0][1]


# ----- network ------------------------------------------------------------------------------


def ensure_network(
    lab: Lab, pattern: str, cluster_identifier: str, *, direct_access: bool = False
) -> ProxyNetwork:
    """Security groups for functions -> proxy -> database, in the cluster's VPC.

    `direct_access` also lets the functions reach the database itself on 3306, for a
    comparison without the proxy; a production setup leaves that path closed.
    """
    rds = lab.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cluster_identifier)["DBClusters"][0]
    database_groups = [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])]
    subnet_ids, vpc_id = _cluster_subnets(lab, cluster)
    clients = ec2.ensure_security_group(
        lab,
        pattern,
        CLIENT_GROUP_NAME,
        vpc_id,
        description="Functions that connect to the RDS Proxy (no inbound traffic)",
        ledger_kind=CLIENT_GROUP_KIND,
    )
    proxy = ec2.ensure_security_group(
        lab,
        pattern,
        PROXY_GROUP_NAME,
        vpc_id,
        description="RDS Proxy: MySQL from the course's functions only",
        ledger_kind=PROXY_GROUP_KIND,
    )
    ec2.allow_from_group(lab, proxy["GroupId"], clients["GroupId"], MYSQL_PORT, "functions")
    for group in database_groups:
        ec2.allow_from_group(lab, group, proxy["GroupId"], MYSQL_PORT, "RDS Proxy")
        if direct_access:
            ec2.allow_from_group(lab, group, clients["GroupId"], MYSQL_PORT, "functions, direct")
    return ProxyNetwork(
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        client_group_id=clients["GroupId"],
        proxy_group_id=proxy["GroupId"],
        database_group_ids=database_groups,
    )


def _cluster_subnets(lab: Lab, cluster: dict[str, Any]) -> tuple[list[str], str]:
    """The subnets of the cluster's DB subnet group, and their VPC."""
    group = lab.client("rds").describe_db_subnet_groups(DBSubnetGroupName=cluster["DBSubnetGroup"])[
        "DBSubnetGroups"
    ][0]
    subnets = sorted(s["SubnetIdentifier"] for s in group["Subnets"])
    return subnets, group["VpcId"]


# ----- role, proxy, targets, pool -----------------------------------------------------------


def ensure_proxy_role(lab: Lab, pattern: str, secret_arn: str) -> dict[str, Any]:
    """The role RDS Proxy assumes: read the one database secret, decrypt only if it must."""
    key = _customer_managed_key(lab, secret_arn)
    return iam.ensure_role(
        lab,
        pattern,
        "proxy-role",
        service="rds.amazonaws.com",
        statements=iam.secret_read_statements(secret_arn, key),
    )


def ensure_proxy(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    secret_arn: str,
    role_arn: str,
    network: ProxyNetwork,
    idle_client_timeout_s: int = 1800,
) -> ProxyInfo:
    """Get or create a MySQL proxy that requires TLS and IAM authentication; wait for it."""
    proxy_name = lab.name(pattern, name, 63)
    rds = lab.client("rds")
    auth = {
        "AuthScheme": "SECRETS",
        "SecretArn": secret_arn,
        "IAMAuth": "REQUIRED",  # clients log in with a 15-minute token, never the password
        "ClientPasswordAuthType": "MYSQL_NATIVE_PASSWORD",
    }
    if _describe(rds, proxy_name) is None:
        _create_proxy(
            lab,
            DBProxyName=proxy_name,
            EngineFamily="MYSQL",
            Auth=[auth],
            RoleArn=role_arn,
            VpcSubnetIds=network.subnet_ids,
            VpcSecurityGroupIds=[network.proxy_group_id],
            RequireTLS=True,
            IdleClientTimeout=idle_client_timeout_s,
            Tags=naming.tag_list(lab.tags(pattern)),
        )
        lab.ledger.record(KIND, proxy_name, pattern)
    proxy = wait_for(
        lambda: _available(rds, proxy_name),
        what=f"proxy {proxy_name}",
        pace=lab.pace.rds_proxy_available,
        hint="A new proxy takes several minutes on AWS; re-run this cell to keep waiting.",
    )
    return proxy_info_from(proxy)


def proxy_info(lab: Lab, pattern: str, name: str) -> ProxyInfo | None:
    """The proxy `ensure_proxy(lab, pattern, name, ...)` made, or None."""
    found = _describe(lab.client("rds"), lab.name(pattern, name, 63))
    return None if found is None else proxy_info_from(found)


def proxy_for_cluster(lab: Lab, pattern: str, name: str, cluster_id: str) -> ProxyInfo | None:
    """The proxy `ensure_proxy(lab, pattern, name, ...)` made, if it fronts the cluster."""
    found = proxy_info(lab, pattern, name)
    if found is None or found.status != "available":
        return None
    tracked = {t.get("TrackedClusterId") for t in _targets(lab.client("rds"), found.name)}
    return found if cluster_id in tracked else None


def proxy_info_from(proxy: dict[str, Any]) -> ProxyInfo:
    """A ProxyInfo from one describe_db_proxies entry."""
    auth = (proxy.get("Auth") or [{}])[0]
    return ProxyInfo(
        name=proxy["DBProxyName"],
        arn=proxy["DBProxyArn"],
        resource_id=proxy["DBProxyArn"].rsplit(":", 1)[-1],
        endpoint=proxy.get("Endpoint", ""),
        port=MYSQL_PORT,  # the engine's port: proxies answer on it, TLS included
        status=proxy.get("Status", ""),
        require_tls=bool(proxy.get("RequireTLS")),
        iam_auth=auth.get("IAMAuth", "DISABLED"),
        secret_arn=auth.get("SecretArn", ""),
    )


def ensure_targets(lab: Lab, proxy: ProxyInfo, cluster_identifier: str) -> pd.DataFrame:
    """Register the cluster with the proxy (once) and wait until its targets are AVAILABLE.

    Returns one row per target: the tracked cluster and one RDS_INSTANCE per instance.
    """
    rds = lab.client("rds")
    if not _targets(rds, proxy.name):
        with contextlib.suppress(rds.exceptions.DBProxyTargetAlreadyRegisteredFault):
            rds.register_db_proxy_targets(
                DBProxyName=proxy.name,
                TargetGroupName=TARGET_GROUP,
                DBClusterIdentifiers=[cluster_identifier],
            )
    targets = wait_for(
        lambda: _healthy_targets(rds, proxy.name),
        what=f"targets of {proxy.name} to become AVAILABLE",
        pace=lab.pace.rds_proxy_targets_available,
        hint=(
            "A target stays REGISTERING until the proxy has logged in to the database: check "
            "the secret, the proxy role and the security groups (3306 from the proxy)."
        ),
    )
    return targets_frame(targets)


def targets_frame(targets: list[dict[str, Any]]) -> pd.DataFrame:
    """The proxy's targets as a readable table."""
    rows = [
        {
            "type": t.get("Type"),
            "id": t.get("RdsResourceId") or t.get("TrackedClusterId"),
            "role": t.get("Role", ""),
            "port": t.get("Port"),
            "health": (t.get("TargetHealth") or {}).get("State"),
        }
        for t in targets
    ]
    return pd.DataFrame(rows, columns=["type", "id", "role", "port", "health"])


def configure_pool(
    lab: Lab,
    proxy: ProxyInfo,
    *,
    max_connections_percent: int = 100,
    max_idle_connections_percent: int = 50,
    borrow_timeout_s: int = 120,
    exclude_variable_sets: bool = False,
    init_query: str = "",
) -> dict[str, Any]:
    """Set the target group's pool (AWS's defaults unless given); return the settings."""
    if not 1 <= max_connections_percent <= 100:
        raise ValueError(f"max_connections_percent must be 1 to 100, not {max_connections_percent}")
    if not 0 <= max_idle_connections_percent <= max_connections_percent:
        raise ValueError("max_idle_connections_percent must be 0 to max_connections_percent")
    if not 0 <= borrow_timeout_s <= 300:
        raise ValueError(f"borrow_timeout_s must be 0 to 300 seconds, not {borrow_timeout_s}")
    config: dict[str, Any] = {
        "MaxConnectionsPercent": max_connections_percent,
        "MaxIdleConnectionsPercent": max_idle_connections_percent,
        "ConnectionBorrowTimeout": borrow_timeout_s,
        "SessionPinningFilters": ["EXCLUDE_VARIABLE_SETS"] if exclude_variable_sets else [],
        "InitQuery": init_query,
    }
    group = lab.client("rds").modify_db_proxy_target_group(
        TargetGroupName=TARGET_GROUP, DBProxyName=proxy.name, ConnectionPoolConfig=config
    )["DBProxyTargetGroup"]
    return group["ConnectionPoolConfig"]


def connect_statement(lab: Lab, proxy: ProxyInfo, db_user: str) -> dict[str, Any]:
    """Let a function log in to the proxy as `db_user` with an IAM token, and nowhere else."""
    return {
        "Sid": "ConnectThroughTheProxyAsOneUser",
        "Effect": "Allow",
        "Action": "rds-db:connect",
        "Resource": (
            f"arn:aws:rds-db:{lab.region}:{lab.account_id}:dbuser:{proxy.resource_id}/{db_user}"
        ),
    }


def storm(
    lab: Lab, function_name: str, payload: dict[str, Any], *, invocations: int
) -> pd.DataFrame:
    """`invocations` calls of the function that reach the database at the same moment.

    First `start_environments`, so each call has a warm execution environment of its own;
    then the real calls, each told to start at the same instant (`start_at`). One row per
    call: ok, error, client time; `frame.attrs["environments"]` counts the environments.

    RDS Proxy's metrics are per minute, so sessions this function pinned earlier in the
    current minute (an earlier run of the notebook) would count as the storm's: a storm that
    does not pin starts in the next minute then. Pinning storms are recorded in the ledger.
    """
    pins = payload.get("action") == "pin"
    if not pins:
        _wait_out_minute_of_earlier_pins(lab, function_name)
    environments = start_environments(lab, function_name, invocations)
    start_at = time.time() + lab.pace.storm_lead_s
    calls = _invoke_all(lab, function_name, [{**payload, "start_at": start_at}] * invocations)
    if pins:
        parts = naming.parse_name(function_name)
        lab.ledger.record(KIND, function_name, parts.pattern if parts else "", PINNED)
    frame = pd.DataFrame(calls)
    frame.attrs["environments"] = environments
    return frame


def _wait_out_minute_of_earlier_pins(lab: Lab, function_name: str) -> None:
    """If this function last pinned sessions in the current minute, wait for the next one."""
    pinned_at = [
        entry["time"]
        for entry in lab.ledger.entries()
        if entry["id"] == function_name and entry["action"] == PINNED
    ]
    now = time.time()
    if pinned_at and max(pinned_at) // 60 == now // 60:
        wait = 60 - now % 60
        print(
            f"{function_name} pinned sessions earlier in this minute: CloudWatch's per-minute"
            f" maximum would count them as this storm's, so it starts in {wait:.0f} s"
        )
        time.sleep(wait)


def start_environments(lab: Lab, function_name: str, count: int) -> int:
    """Have Lambda run `count` execution environments of the function; how many it runs.

    `count` parallel calls of `{"action": "ping", "until": t}`: a call that finds no idle
    environment gets a new one (a cold start), and each keeps its environment busy until t,
    so no environment is reused while the others arrive. The handler answers with its
    environment's log stream, one per environment. If fewer answered than `count` (calls
    that arrived after t reused an environment), the round is repeated with twice the time:
    the environments started so far stay warm, so it waits for the missing ones only.
    """
    pace = lab.pace.lambda_environments_started
    hold, give_up = pace.estimate, time.monotonic() + (pace.timeout or 300)
    while True:
        until = time.time() + hold
        pings = _invoke_all(lab, function_name, [{"action": "ping", "until": until}] * count)
        failed = [row["error"] for row in pings if not row["ok"]]
        if failed:
            raise RuntimeError(f"{function_name} failed to start environments: {failed[0]}")
        environments = len({row["result"].get("environment") for row in pings})
        if environments >= count or time.monotonic() + 2 * hold > give_up:
            return environments
        hold *= 2


def _invoke_all(lab: Lab, function_name: str, events: list[dict[str, Any]]) -> list[dict]:
    """Invoke once per event, all at once; a row per call (errors are rows, not raised)."""
    config = Config(
        max_pool_connections=len(events), read_timeout=900, retries={"mode": "standard"}
    )
    client = lab.session.client("lambda", endpoint_url=lab.endpoint_url, config=config)

    def call(event: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        response = client.invoke(FunctionName=function_name, Payload=json.dumps(event))
        body = json.loads(response["Payload"].read() or b"null")
        result = body if isinstance(body, dict) else {}
        error = result.get("error") or (body if response.get("FunctionError") else None)
        return {
            "ok": not response.get("FunctionError") and not result.get("error"),
            "error_code": result.get("error_code"),
            "error": error,
            "client_ms": (time.perf_counter() - started) * 1000,
            "result": result,
        }

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(call, events))


# ----- helpers --------------------------------------------------------------------------------


def _describe(rds: Any, proxy_name: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_proxies(DBProxyName=proxy_name)["DBProxies"][0]
    except rds.exceptions.DBProxyNotFoundFault:
        return None


def _available(rds: Any, proxy_name: str) -> dict[str, Any] | None:
    proxy = _describe(rds, proxy_name)
    if proxy is None:
        raise RuntimeError(f"proxy {proxy_name} disappeared while it was being created")
    if proxy["Status"] in ("incompatible-network", "insufficient-resource-limits"):
        raise RuntimeError(f"proxy {proxy_name} is {proxy['Status']}: see the RDS console")
    return proxy if proxy["Status"] == "available" else None


def _targets(rds: Any, proxy_name: str) -> list[dict[str, Any]]:
    try:
        return rds.describe_db_proxy_targets(DBProxyName=proxy_name)["Targets"]
    except rds.exceptions.DBProxyTargetGroupNotFoundFault:
        return []


def _healthy_targets(rds: Any, proxy_name: str) -> list[dict[str, Any]] | None:
    """The targets once every instance target is AVAILABLE; raise if one is UNAVAILABLE."""
    targets = _targets(rds, proxy_name)
    instances = [t for t in targets if t.get("Type") == "RDS_INSTANCE"]
    for target in instances:
        health = target.get("TargetHealth") or {}
        if health.get("State") == _UNHEALTHY:
            raise RuntimeError(
                f"proxy target {target.get('RdsResourceId')} is UNAVAILABLE: "
                f"{health.get('Reason')}: {health.get('Description')}"
            )
    ready = instances and all(
        (t.get("TargetHealth") or {}).get("State") == "AVAILABLE" for t in instances
    )
    return targets if ready else None


def _create_proxy(lab: Lab, **arguments: Any) -> None:
    """create_db_proxy, retried while a new role propagates to RDS (seconds on AWS)."""
    rds = lab.client("rds")

    def attempt() -> bool:
        try:
            rds.create_db_proxy(**arguments)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if "role" in message.lower() and "assume" in message.lower():
                return False
            raise
        return True

    wait_for(attempt, what="IAM role reaching RDS", timeout=90, estimate=10, interval=5)


def _customer_managed_key(lab: Lab, secret_arn: str) -> str | None:
    """The secret's KMS key ARN if it is customer managed (it then needs kms:Decrypt)."""
    key = lab.client("secretsmanager").describe_secret(SecretId=secret_arn).get("KmsKeyId")
    if not key:
        return None  # the AWS managed key aws/secretsmanager
    try:
        described = lab.client("kms").describe_key(KeyId=key)["KeyMetadata"]
    except ClientError:
        return None  # not readable here: the proxy role gets no KMS permission
    return described["Arn"] if described.get("KeyManager") == "CUSTOMER" else None


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course proxy (all runs); names say run and pattern."""
    return cleanup.named(KIND, lab, "rds.describe_db_proxies", "DBProxies", "DBProxyName")


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a proxy and wait until it is gone (its interfaces hold its security group)."""
    rds = lab.client("rds")
    rds.delete_db_proxy(DBProxyName=resource.identifier)
    wait_for(
        lambda: _describe(rds, resource.identifier) is None,
        what=f"deleting proxy {resource.identifier}",
        pace=lab.pace.rds_proxy_deleted,
    )


RESOURCE_KINDS = [
    # The functions that connect go first; the proxy holds its target cluster and its role.
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function",)),
    ec2.released_group_kind(CLIENT_GROUP_KIND, CLIENT_GROUP_NAME, after=("lambda function", KIND)),
    ec2.released_group_kind(PROXY_GROUP_KIND, PROXY_GROUP_NAME, after=("lambda function", KIND)),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    # Serverless v2 targets are billed per ACU-hour of the database, with a minimum of 8 ACU:
    # https://aws.amazon.com/rds/proxy/pricing/
    "rds_proxy_acu_hour": Price(0.015, "ACU-hour", "Serverless v2 target; 8 ACU minimum"),
}
