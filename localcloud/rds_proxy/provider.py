"""RDS Proxy: the control plane over moto's records, and a real pooling MySQL proxy per proxy.

moto keeps each proxy's record (name, ARN, VPC, tags); this provider answers the proxy
operations itself where moto is wrong or missing (ModifyDBProxy, the targets, the target
group's pool settings, errors for unknown proxies) and runs the data plane: a MySQL-protocol
listener on the proxy's own loopback address, port 3306, that authenticates clients against
the proxy's Secrets Manager secrets (or IAM tokens), speaks TLS with a certificate from the
local cloud's CA, and multiplexes client sessions over a pool of connections to the
registered Aurora cluster's MariaDB server, borrowing a connection per transaction
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy.howitworks.html).
Metrics go to AWS/RDS with AWS's names, units and dimension sets; logs to the log group
/aws/rds/proxy/<name>. Target health checks and the pool sized from them are in
`targets.py`.

Where the local cloud differs from AWS:
- Endpoint is the proxy's own loopback address (127.0.2.1, 127.0.2.2, ... on port 3306), not
  a DNS name; only if no such address can be bound does the proxy listen on 127.0.0.1 at a
  free port, which the daemon's endpoints list shows (AWS's DBProxy shape has no port). No
  VPC, subnet or security group is enforced.
- A proxy is `creating` for about 2 seconds, targets `REGISTERING` for about 1 second (under
  the AWS timing profile, `localcloud/timing.py`, AWS's times scaled: the proxy refuses
  connections until it is `available`, and a deleted one is `deleting` for a while).
  Only MYSQL proxies get a data plane; POSTGRESQL and SQLSERVER proxies are records only.
  One target group (`default`) per proxy; NewName and NewDBProxyName (renames) are refused;
  additional proxy endpoints (CreateDBProxyEndpoint) are not served.
- The proxy's IAM role is not evaluated: the secrets are read whatever the role allows
  (the role must exist). Target health is AVAILABLE when one secret's credentials log in to
  the cluster, UNAVAILABLE with AUTH_FAILURE "Proxy does not have any registered
  credentials" when no secret can be read or none logs in, UNAVAILABLE UNREACHABLE when the
  cluster's server is gone; it is checked at registration, on ModifyDBProxy and every 5
  seconds while the pool has no open connection (then the pool's own logins show health).
- IAM authentication checks the token's action, user, endpoint, region, expiry and SigV4
  signature against the local cloud's credentials; no IAM policy (`rds-db:connect`) is
  evaluated. IAMAuth applies per secret (a user whose secret says DISABLED logs in with its
  password), but a plaintext client of a proxy where any secret's IAMAuth is REQUIRED
  gets error 3159 before its user is known.
- The server greeting says version 8.0.32 (Aurora MySQL 3); the engine behind is MariaDB.
  The client's handshake character set is applied as SET NAMES; FOUND_ROWS, compression,
  LOAD DATA LOCAL and caching_sha2_password are not offered.
- Pinning follows AWS's documented conditions by reading the SQL text; a statement that
  mentions a user variable assignment inside a string literal pins too (AWS parses more
  precisely). ROW_COUNT(), FOUND_ROWS() and LAST_INSERT_ID() never pin. A plain
  `SET TRANSACTION ...` (next transaction only) is not carried to another connection.
- Pool: connections idle beyond MaxIdleConnectionsPercent close after 5 minutes idle; no
  connections are reserved for monitoring, so MaxDatabaseConnectionsAllowed is exactly
  MaxConnectionsPercent of the cluster's max_connections. Without an available target a
  client's first statement gets 9501 at once instead of waiting ConnectionBorrowTimeout.
  The proxy's connections to the database are plaintext (the local engine has no TLS).
- Gauges (ClientConnections, DatabaseConnections, ...Currently..., MaxDatabaseConnectionsAllowed)
  are sampled once a second as one proxy node: read them with Maximum or Average (Sum adds
  the seconds). AvailabilityPercentage and the *WithTLS database metrics are not published.
- Log events are the proxy's own wording (AWS's log format is not fixed either); debug
  logging adds one line per client connection and does not switch itself off after 24 h.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from typing import Any

from ..certificates import server_certificate
from ..context import CloudContext
from ..protocols import ServiceError
from ..rds import RdsProvider
from ..registry import Provider, RequestContext
from ..timing import Lifecycle
from .health import read_auth_entries, read_credentials
from .listener import ProxyListener, bind_endpoint
from .metrics import ProxyMetrics
from .records import (
    Health,
    ProxyRecord,
    check_auth,
    check_create,
    check_group,
    check_idle,
    check_pool,
    invalid,
    not_found,
)
from .runtime import ProxyRuntime, ProxySettings
from .targets import TargetMonitor, pool_limits

log = logging.getLogger("localcloud.rds_proxy")


class RdsProxyProvider(Provider):
    """DB proxies: moto's records, corrected, and a pooling MySQL proxy for each."""

    service = "rds"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._proxies: dict[tuple[str, str, str], ProxyRecord] = {}  # (account, region, name)
        self._targets = TargetMonitor(cloud, self._lock, self._registered)
        self._lifecycle = Lifecycle(cloud.timing, "rds proxy")  # AWS timing profile only
        self._registering = Lifecycle(cloud.timing, "rds proxy target")

    # ----- proxies ----------------------------------------------------------------------

    def CreateDBProxy(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's record, then a listener on the proxy's own address; `creating` at first."""
        with self._lock:
            count = sum(1 for k in self._proxies if k[:2] == (context.account_id, context.region))
        check_create(params, count)
        forwarded = {**params, "Auth": params.get("Auth") or []}
        forwarded.pop("DefaultAuthScheme", None)
        forwarded.pop("EndpointNetworkType", None)
        forwarded.pop("TargetConnectionNetworkType", None)
        proxy = self._moto_call("CreateDBProxy", forwarded, context)["DBProxy"]
        groups = self._moto_call(
            "DescribeDBProxyTargetGroups", {"DBProxyName": proxy["DBProxyName"]}, context
        )["TargetGroups"]
        record = ProxyRecord(
            name=proxy["DBProxyName"],
            arn=proxy["DBProxyArn"],
            region=context.region,
            account_id=context.account_id,
            engine_family=params["EngineFamily"],
            auth=list(params.get("Auth") or []),
            role_arn=params["RoleArn"],
            require_tls=bool(params.get("RequireTLS", False)),
            idle_client_timeout=int(params.get("IdleClientTimeout") or 1800),
            debug_logging=bool(params.get("DebugLogging", False)),
            security_groups=params.get("VpcSecurityGroupIds"),
            default_auth_scheme=params.get("DefaultAuthScheme"),
            target_group_arn=groups[0]["TargetGroupArn"],
        )
        record.creating_s += self._lifecycle.create_s
        self._lifecycle.forget(self._key(context, record.name))  # a namesake being deleted
        record.registering_s += self._registering.create_s
        with self._lock:
            self._proxies[self._key(context, record.name)] = record
        if record.engine_family == "MYSQL":
            try:
                self._start(record)
            except Exception as error:
                log.exception("proxy %s: the listener did not start", record.name)
                with self._lock:
                    self._proxies.pop(self._key(context, record.name), None)
                with contextlib.suppress(ServiceError):
                    self._moto_call("DeleteDBProxy", {"DBProxyName": record.name}, context)
                raise ServiceError(
                    "InternalFailure", f"The proxy's listener did not start: {error}", 500, False
                ) from None
        self._targets.start()
        return {"DBProxy": record.patch(proxy)}

    def DescribeDBProxies(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's proxies with their local endpoints, statuses and settings."""
        name = params.get("DBProxyName")
        if name and self._find(context, name) is None:
            if isinstance(shown := self._lifecycle.deleting(self._key(context, name)), dict):
                return {"DBProxies": [dict(shown)]}
            raise not_found(name)
        result = self._moto_call("DescribeDBProxies", params, context)
        proxies = []
        for proxy in result.get("DBProxies", []):
            record = self._find(context, proxy["DBProxyName"])
            if record is not None:
                proxies.append(record.patch(proxy))
        if not name:
            here = (context.account_id, context.region)
            gone = self._lifecycle.still_deleting().items()
            proxies += [dict(shown) for key, shown in gone if key[:2] == here]
        result["DBProxies"] = proxies
        return result

    def ModifyDBProxy(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Secrets, TLS, idle timeout, debug logging, role and security groups."""
        record = self._get(context, params["DBProxyName"])
        if params.get("NewDBProxyName") and params["NewDBProxyName"] != record.name:
            raise invalid("Renaming a DB proxy is not supported by the local cloud.")
        if "Auth" in params:
            check_auth(params["Auth"], record.engine_family)
        check_idle(params.get("IdleClientTimeout"))
        with self._lock:
            if "Auth" in params:
                record.auth = list(params["Auth"])
            for key, attribute in (
                ("RequireTLS", "require_tls"),
                ("DebugLogging", "debug_logging"),
                ("RoleArn", "role_arn"),
                ("SecurityGroups", "security_groups"),
                ("DefaultAuthScheme", "default_auth_scheme"),
            ):
                if key in params:
                    setattr(record, attribute, params[key])
            if "IdleClientTimeout" in params:
                record.idle_client_timeout = int(params["IdleClientTimeout"])
            record.updated = time.time()
            self._apply_settings(record)
        self._targets.check(record)
        proxy = self._moto_call("DescribeDBProxies", {"DBProxyName": record.name}, context)
        return {"DBProxy": record.patch(proxy["DBProxies"][0])}

    def DeleteDBProxy(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """The proxy stops listening and closes its database connections; `deleting`."""
        record = self._get(context, params["DBProxyName"])
        proxy = self._moto_call("DeleteDBProxy", {"DBProxyName": record.name}, context)["DBProxy"]
        with self._lock:
            self._proxies.pop(self._key(context, record.name), None)
            record.deleting = True
        self._stop_proxy(record)
        shown = record.patch(proxy)
        self._lifecycle.deleted(self._key(context, record.name), dict(shown))
        return {"DBProxy": shown}

    # ----- targets ----------------------------------------------------------------------

    def RegisterDBProxyTargets(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """One Aurora cluster per proxy: a TRACKED_CLUSTER target and its instances."""
        record = self._get(context, params["DBProxyName"])
        check_group(params)
        if record.status != "available":
            raise ServiceError(
                "InvalidDBProxyStateFault",
                f"DB proxy {record.name} is in {record.status} state, needs to be available.",
            )
        clusters = params.get("DBClusterIdentifiers") or []
        if params.get("DBInstanceIdentifiers"):
            raise invalid("Register the Aurora DB cluster, not its DB instances.")
        if len(clusters) != 1:
            raise invalid("Exactly one DB cluster must be given in DBClusterIdentifiers.")
        if record.cluster is not None:
            raise ServiceError(
                "DBProxyTargetAlreadyRegisteredFault",
                f"The proxy {record.name} already has a registered target.",
            )
        rds = self.cloud.providers.get(RdsProvider)
        try:
            database = rds.cluster_database(context.region, context.account_id, clusters[0])
        except KeyError:
            raise ServiceError(
                "DBClusterNotFoundFault", f"DBCluster {clusters[0]} not found.", 404
            ) from None
        with self._lock:
            record.cluster = database.identifier
            record.instances = list(database.instance_ids)
            record.registered_at = time.time()
            record.health = Health()
            if record.runtime is not None:
                record.runtime.metrics.target = (record.instances or [record.cluster])[0]
        threading.Thread(target=self._targets.check, args=(record,), daemon=True).start()
        return {"DBProxyTargets": record.targets(database.host, database.port)}

    def DescribeDBProxyTargets(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """The cluster's targets with their health."""
        record = self._get(context, params["DBProxyName"])
        check_group(params)
        host, port = self._instance_address(record, context)
        return {"Targets": record.targets(host, port)}

    def DeregisterDBProxyTargets(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Forget the cluster; the pool closes its connections."""
        record = self._get(context, params["DBProxyName"])
        check_group(params)
        wanted = [c.lower() for c in params.get("DBClusterIdentifiers") or []]
        wanted += [i.lower() for i in params.get("DBInstanceIdentifiers") or []]
        if (
            record.cluster is None
            or not wanted
            or any(w != record.cluster and w not in record.instances for w in wanted)
        ):
            raise ServiceError(
                "DBProxyTargetNotFoundFault",
                f"The specified RDS DB instance or Aurora DB cluster isn't registered to proxy "
                f"{record.name}.",
                404,
            )
        with self._lock:
            record.cluster, record.instances, record.max_connections = None, [], None
            pool = record.runtime.pool if record.runtime else None
            if record.runtime is not None:
                record.runtime.pool = None
        if pool is not None:
            pool.close()
        return {}

    def DescribeDBProxyTargetGroups(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """The proxy's `default` target group with its pool settings."""
        record = self._get(context, params["DBProxyName"])
        check_group(params)
        return {"TargetGroups": [record.target_group()]}

    def ModifyDBProxyTargetGroup(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """New pool settings, applied to the running pool at once."""
        record = self._get(context, params["DBProxyName"])
        check_group(params)
        if params.get("NewName") and params["NewName"] != "default":
            raise invalid("Renaming the default target group is not supported.")
        config = check_pool(params.get("ConnectionPoolConfig") or {}, record.pool_config)
        with self._lock:
            record.pool_config = config
            record.group_updated = time.time()
            self._apply_settings(record)
        return {"DBProxyTargetGroup": record.target_group()}

    # ----- the local cloud's lifecycle --------------------------------------------------

    def reset(self) -> None:
        """Stop every proxy."""
        with self._lock:
            records = list(self._proxies.values())
            self._proxies.clear()
        self._lifecycle.clear()
        for record in records:
            self._stop_proxy(record)

    def shutdown(self) -> None:
        self._targets.stop()
        self.reset()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"proxies": len(self._proxies)}

    def endpoints(self) -> dict[str, Any]:
        """Each proxy's address, by name."""
        with self._lock:
            return {
                "proxies": {
                    r.name: f"{r.runtime.host}:{r.runtime.port}"
                    for r in self._proxies.values()
                    if r.runtime is not None
                }
            }

    # ----- the data plane ---------------------------------------------------------------

    def _start(self, record: ProxyRecord) -> None:
        """Bind the proxy's address, make its certificate, start its listener."""
        with self._lock:
            taken = {r.runtime.host for r in self._proxies.values() if r.runtime is not None}
        sock = bind_endpoint(taken)
        host, port = sock.getsockname()[:2]
        cert, key = server_certificate(
            self.cloud.state_dir, f"rds-proxy-{record.region}-{record.name}", [], [host]
        )
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        group = f"/aws/rds/proxy/{record.name}"
        logs = self.cloud.logs
        with contextlib.suppress(Exception):
            logs.ensure_stream(
                record.account_id, record.region, group, "default", create_group=True
            )

        def log_line(message: str) -> None:
            logs.add((record.account_id, record.region, group, "default"), f"[default] {message}")

        runtime = ProxyRuntime(
            name=record.name,
            region=record.region,
            host=host,
            port=port,
            settings=ProxySettings(),
            credentials=lambda user: self._password(record, user),
            iam_users=lambda user: self._iam_required(record, user),
            metrics=ProxyMetrics(self.cloud.publisher, self.cloud.metrics, record.name),
            log=log_line,
            tls=tls,
        )
        listener = ProxyListener(sock, runtime)
        listener.ready = lambda: record.status == "available"
        with self._lock:
            record.runtime, record.listener = runtime, listener
            self._apply_settings(record)
        listener.start()
        log.info("proxy %s listens on %s:%s", record.name, host, port)

    def _apply_settings(self, record: ProxyRecord) -> None:
        """Push the record's settings to the running proxy (under the lock)."""
        runtime = record.runtime
        if runtime is None:
            return
        runtime.settings = ProxySettings(
            require_tls=record.require_tls,
            iam_required=record.iam_required,
            idle_client_timeout=float(record.idle_client_timeout),
            exclude_variable_sets="EXCLUDE_VARIABLE_SETS"
            in (record.pool_config.get("SessionPinningFilters") or []),
            debug_logging=record.debug_logging,
        )
        if runtime.pool is not None and record.max_connections:
            runtime.pool.set_limits(pool_limits(record))

    def _iam_required(self, record: ProxyRecord, user: str) -> bool:
        """IAMAuth of the first secret that holds `user`; any REQUIRED entry if none does."""
        for username, _, iam_auth in read_auth_entries(self.cloud.moto, record):
            if username == user:
                return iam_auth == "REQUIRED"
        return record.iam_required

    def _password(self, record: ProxyRecord, user: str) -> str | None:
        """The password of `user` from the first of the proxy's secrets that holds it."""
        for username, password in read_credentials(self.cloud.moto, record):
            if username == user:
                return password
        return None

    def _stop_proxy(self, record: ProxyRecord) -> None:
        with self._lock:
            listener, record.listener = record.listener, None
            pool = record.runtime.pool if record.runtime else None
            if record.runtime is not None:
                record.runtime.pool = None
        if listener is not None:
            listener.close()
        if pool is not None:
            pool.close()

    # ----- helpers ----------------------------------------------------------------------

    def _moto_call(self, operation: str, params: dict[str, Any], context: RequestContext) -> Any:
        try:
            return self.cloud.moto.call("rds", operation, params, context.region)
        except ServiceError as error:
            if error.code == "InvalidSubnetID.NotFound":
                raise ServiceError("InvalidSubnet", error.message) from None
            raise

    @staticmethod
    def _key(context: RequestContext, name: str) -> tuple[str, str, str]:
        return (context.account_id, context.region, name.lower())

    def _registered(self) -> list[ProxyRecord]:
        """The proxies with a registered target."""
        with self._lock:
            return [r for r in self._proxies.values() if r.cluster is not None]

    def _find(self, context: RequestContext, name: str) -> ProxyRecord | None:
        with self._lock:
            return self._proxies.get(self._key(context, name))

    def _get(self, context: RequestContext, name: str) -> ProxyRecord:
        record = self._find(context, name)
        if record is None:
            raise not_found(name)
        return record

    def _instance_address(self, record: ProxyRecord, context: RequestContext) -> tuple[str, int]:
        """Where the instance targets are reached; learns the cluster's current instances."""
        if record.cluster is None:
            return "", 0
        rds = self.cloud.providers.get(RdsProvider)
        try:
            database = rds.cluster_database(context.region, context.account_id, record.cluster)
        except KeyError:
            return "127.0.0.1", 3306  # the cluster is gone; its targets show UNREACHABLE
        with self._lock:
            record.instances = list(database.instance_ids)
        return database.host, database.port
