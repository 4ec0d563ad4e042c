"""The RDS provider: Aurora MySQL clusters on MariaDB, PostgreSQL instances on PostgreSQL.

moto stores clusters, instances, subnet groups, tags and the managed master secret. This
provider lets moto do that bookkeeping (`cloud.moto.call`) and corrects what it gets wrong: it
starts a real database per Aurora MySQL cluster, puts a strong random password into the managed
secret (moto writes a fixed one), answers with the local address and port, serves the Data API
switch (EnableHttpEndpoint / DisableHttpEndpoint, HTTP 500 in moto) and the engine version
catalogue (DescribeDBEngineVersions, not implemented by moto). The Data API provider and the
ACU model read the clusters through `cluster_database()` and `clusters()`. An RDS for
PostgreSQL instance (Engine `postgres`, no cluster) gets a PostgreSQL server of its own on its
own loopback address (`instances.py`, checked by `instance_rules.py`).

AWS semantics kept:
- CreateDBCluster (aurora-mysql) takes either MasterUserPassword (8 to 41 printable ASCII,
  not / " @ or space) or ManageMasterUserPassword; with the latter RDS generates the password
  and keeps {"username", "password"} in an `rds!cluster-...` secret that is deleted with the
  cluster. DatabaseName creates that database; without it there is none.
- EnableHttpEndpoint at creation turns the Data API on, for Serverless v2 and provisioned
  clusters too (Aurora User Guide, "Enabling RDS Data API when you create a database").
  Afterwards only the EnableHttpEndpoint / DisableHttpEndpoint operations change it: the
  EnableHttpEndpoint parameter of ModifyDBCluster applies to Serverless v1 only and is ignored
  for these clusters (ModifyDBCluster API reference). An unknown ARN is ResourceNotFoundFault
  (404), the error the EnableHttpEndpoint API reference lists.
- ModifyDBCluster: MasterUserPassword is applied at once and refused while the password is
  managed (unless ManageMasterUserPassword=false comes with it, which deletes the secret);
  ManageMasterUserPassword=true generates a new password into a new secret;
  RotateMasterUserPassword (with ApplyImmediately) puts a new password into the secret and
  keeps the old one as AWSPREVIOUS. ServerlessV2ScalingConfiguration changes are kept.
- max_connections follows Aurora MySQL Serverless v2's table for the cluster's maximum ACU
  (1 ACU 90, 4: 135, 8: 1,000, 16: 2,000, 32: 3,000, 64: 4,000, 128: 5,000; a maximum between
  two rows gets the lower one), so a client past it gets the server's own error 1040 "Too many
  connections". It is static, as on AWS: a ModifyDBCluster that changes MaxCapacity takes
  effect at the next RebootDBInstance of one of the cluster's instances
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.setting-capacity.html#aurora-serverless-v2.max-connections).
- CreateDBCluster with an identifier in use is DBClusterAlreadyExistsFault (moto, within the
  minute of the first, fails on the automated snapshot's name, and afterwards replaces the
  cluster).
- DeleteDBCluster refuses while instances exist (InvalidDBClusterStateFault, from moto);
  afterwards the data is gone, and so are the automated backups unless
  DeleteAutomatedBackups is false (moto keeps them: re-creating the cluster within the same
  minute would then fail).

- RDS for PostgreSQL instances: what RDS does that they do too is in `instances.py`.

Where the local cloud differs from AWS:
- Creation is instant: CreateDBCluster returns once the server answers (about a second) and
  the cluster is `available` on the first describe; waiters pass at once. Under the AWS
  timing profile (`localcloud/timing.py`, `lifecycle.py`) clusters and their instances are
  `creating` and `deleting` for AWS's times, scaled, and refuse changes meanwhile.
- One MariaDB 10.11 server stands in for Aurora MySQL 3 (MySQL 8.0) whatever the EngineVersion.
  SQL differences the course may meet: no `->` / `->>` JSON operators (use JSON_EXTRACT /
  JSON_UNQUOTE), `JSON` is `LONGTEXT` with a validity check, no LATERAL derived tables, the
  default collation is utf8mb4_general_ci (not utf8mb4_0900_ai_ci), no caching_sha2_password
  users, and none of Aurora's own procedures and functions (mysql.rds_*, lambda_sync).
- Endpoint, ReaderEndpoint and every instance's Endpoint.Address are 127.0.0.1 with the
  server's port: the reader endpoint is the writer, and all instances of a cluster share one
  server (no replicas, no failover). A cluster accepts connections even before it has an
  instance.
- No VPC, subnet group, security group or IAM database authentication is enforced; the
  server listens on loopback only and speaks plain TCP (no TLS).
- The managed secret is written through Secrets Manager's API, so the fixed password moto first
  put there stays as an unlabelled old version; it is not rotated every 7 days.
- Only provisioned-mode (Serverless v2 / provisioned) aurora-mysql clusters and postgres
  instances get a server. Other engines, Serverless v1, global-database and read-replica
  clusters are moto's records only; EnableHttpEndpoint merely records the flag.
- A PostgreSQL instance is `creating` for the second or two its server takes to start, not
  minutes, and is gone as DeleteDBInstance returns (under the AWS timing profile it is
  `creating` and `deleting` for an Aurora instance's times, scaled). Its Endpoint.Address is
  its own loopback address (127.0.8.1, 127.0.8.2, ...) on 5432, not a DNS name; the AWS-style
  name is in its certificate only, and HostedZoneId is us-east-1's in every region. If no
  such address can be bound it listens on 127.0.0.1 at a free port. The machine's PostgreSQL
  (15 on Debian 12) serves every EngineVersion; any minor version of the majors 13 to 17 is
  accepted, not only the ones AWS offers.
- max_connections uses the class's full memory (db.t4g.micro: 1 GiB, 112 connections); AWS's
  DBInstanceClassMemory leaves out what the OS and RDS reserve, so AWS shows fewer. The
  master user has CREATEDB and CREATEROLE and owns `postgres` and DBName, but there is no
  rds_superuser role and none of RDS's extensions. AllocatedStorage, StorageType, Iops,
  PubliclyAccessible, security groups, IAM database authentication and ModifyDBInstance are
  recorded by moto, not applied; a final snapshot is a record without data.
- Snapshots, backups, Stop/Start, failover and parameter groups are moto's records only: no
  data is saved or restored.
- RebootDBInstance does not restart the server: it applies a changed max_connections at once
  and keeps open connections. The master user may open one connection past max_connections
  (MariaDB keeps one for a user with SUPER); Aurora keeps its reserved connections for rdsadmin.
  A cluster without Serverless v2 scaling keeps MariaDB's default of 151 connections.
- DescribeDBEngineVersions knows Aurora MySQL 3 (3.04 to 3.10) and PostgreSQL 13 to 17 (two
  minor versions each) only; DefaultOnly returns each engine's newest; Filters are ignored.
- MasterUsername and password rules are checked; the error messages are AWS's where known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from typing import Any

from ..context import CloudContext
from ..protocols import ServiceError, unless_missing
from ..registry import Provider, RequestContext
from . import engine_versions
from .capacity import CapacityMonitor
from .cluster_servers import ClusterServers
from .instances import PostgresInstances
from .lifecycle import RdsLifecycles
from .passwords import check_password, generate_password, password_change, write_secret
from .state import (
    ClusterDatabase,
    ClusterRecord,
    check_names,
    combination,
    engine_owner,
    gets_server,
    invalid,
    max_connections_for,
)

log = logging.getLogger("localcloud.rds")


class RdsProvider(Provider):
    """Aurora MySQL clusters on private MariaDB servers; every other RDS call goes to moto."""

    service = "rds"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._clusters: dict[str, ClusterRecord] = {}  # by cluster ARN
        self._other_http: dict[str, bool] = {}  # HttpEndpointEnabled of clusters without a server
        self._capacity: CapacityMonitor | None = None
        self._capacity_lock = threading.Lock()
        self._servers = ClusterServers(cloud.engines, self._lock)
        self._closed = False
        self._lifecycles = RdsLifecycles(cloud.timing)  # AWS timing profile only
        self._postgres = PostgresInstances(cloud.engines, cloud.moto, self._moto, self._lifecycles)

    # ----- what other providers use ---------------------------------------------------

    @property
    def capacity(self) -> CapacityMonitor | None:
        """The ACU model, started on first use; None once the provider has shut down."""
        with self._capacity_lock:
            if self._capacity is None and not self._closed:
                self._capacity = CapacityMonitor(store=self.cloud.metrics, clusters=self.clusters)
                self._capacity.start()
            return self._capacity

    def cluster_database(self, region: str, account_id: str, cluster: str) -> ClusterDatabase:
        """A running cluster by ARN or identifier; KeyError if unknown or still starting."""
        with self._lock:
            record = self._find(region, account_id, cluster)
            if record is None or record.port is None:
                raise KeyError(cluster)
            if self._lifecycles.cluster_creating(region, account_id, record.identifier):
                raise KeyError(cluster)
            self._servers.refresh(record)
            found = record.snapshot()
        ready = self._lifecycles.ready_instances(region, account_id, found.instance_ids)
        return dataclasses.replace(found, instance_ids=ready)

    def clusters(self) -> list[ClusterDatabase]:
        """Every cluster whose server has started (for the capacity monitor)."""
        with self._lock:
            live = [r for r in self._clusters.values() if r.port is not None]
            for record in live:
                self._servers.refresh(record)
            return [r.snapshot() for r in live]

    # ----- clusters ---------------------------------------------------------------------

    def CreateDBCluster(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Aurora MySQL: moto's cluster plus a private MariaDB server at 127.0.0.1."""
        self._check_new_cluster(params["DBClusterIdentifier"], context)
        if not gets_server(params):
            return self._moto("CreateDBCluster", params, context)
        username, given = params.get("MasterUsername"), params.get("MasterUserPassword")
        if not username:
            raise invalid("The parameter MasterUsername must be provided and must not be blank.")
        check_names(username, params.get("DatabaseName"))
        if params.get("ManageMasterUserPassword"):
            if given is not None:
                raise combination(
                    "You can't specify MasterUserPassword when ManageMasterUserPassword is on."
                )
        else:
            check_password(given or "")
        cluster = self._moto("CreateDBCluster", params, context)["DBCluster"]
        identifier = cluster["DBClusterIdentifier"]
        record = ClusterRecord(
            identifier=identifier,
            arn=cluster["DBClusterArn"],
            region=context.region,
            account_id=context.account_id,
            owner=engine_owner(context.account_id, context.region, identifier),
            master_username=username,
            password=given or generate_password(),
            database=params.get("DatabaseName"),
            secret_arn=(cluster.get("MasterUserSecret") or {}).get("SecretArn"),
            http_endpoint_enabled=bool(params.get("EnableHttpEndpoint")),
            max_connections=max_connections_for(params.get("ServerlessV2ScalingConfiguration")),
        )
        with self._lock:
            if any(r.owner == record.owner for r in self._clusters.values()):
                record.owner += f"#{uuid.uuid4().hex[:8]}"  # a renamed cluster had this name
            self._clusters[record.arn] = record
        try:
            if record.secret_arn:
                write_secret(self.cloud.moto, record, fresh=True)
            self._servers.start(record)
        except Exception as error:
            log.exception("cluster %s: the local server did not start", identifier)
            self._abandon(record, context)
            raise ServiceError(
                "InternalFailure",
                f"The local MariaDB server for cluster {identifier} did not start: {error}",
                500,
                sender_fault=False,
            ) from None
        _ = self.capacity  # the ACU model starts with the first cluster
        self._lifecycles.cluster_created(context, identifier)
        return {"DBCluster": self._patch_cluster(cluster, context)}

    def DescribeDBClusters(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's clusters, with the local endpoints, ports and Data API flags."""
        result = self._lifecycles.describe_clusters(
            params, context, lambda: self._moto("DescribeDBClusters", params, context)
        )
        for cluster in result.get("DBClusters", []):
            if cluster.get("Status") != "deleting":
                self._patch_cluster(cluster, context)
        return result

    def ModifyDBCluster(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Password, secret, scaling and name changes also reach the cluster's server."""
        with self._lock:
            record = self._find(context.region, context.account_id, params["DBClusterIdentifier"])
        if record is None:  # moto fails with a KeyError (500) on an unknown cluster: 404 first
            self._moto(
                "DescribeDBClusters",
                {"DBClusterIdentifier": params["DBClusterIdentifier"]},
                context,
            )
            return self._moto("ModifyDBCluster", params, context)
        self._lifecycles.check_cluster_available(context, record.identifier)
        forwarded, password, manage = password_change(record, params)
        cluster = self._moto("ModifyDBCluster", forwarded, context)["DBCluster"]
        with self._lock:
            self._clusters.pop(record.arn, None)
            record.identifier, record.arn = cluster["DBClusterIdentifier"], cluster["DBClusterArn"]
            self._clusters[record.arn] = record
            if manage is not None:
                record.secret_arn = (cluster.get("MasterUserSecret") or {}).get("SecretArn")
        if password is not None:
            self._servers.set_password(record, password)
            with self._lock:
                record.password = password
            if record.secret_arn:
                write_secret(self.cloud.moto, record, fresh=manage is True)
        return {"DBCluster": self._patch_cluster(cluster, context)}

    def DeleteDBCluster(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto deletes (or refuses while instances exist); then the server and its data go."""
        with self._lock:
            record = self._find(context.region, context.account_id, params["DBClusterIdentifier"])
        if record is not None:
            self._lifecycles.check_cluster_available(context, record.identifier)
        result = self._moto("DeleteDBCluster", params, context)
        if params.get("DeleteAutomatedBackups", True):
            self._drop_automated_snapshots(result["DBCluster"]["DBClusterIdentifier"], context)
        self._patch_cluster(result["DBCluster"], context)
        if record is not None:
            self._lifecycles.cluster_deleted(context, result["DBCluster"])
        with self._lock:
            self._other_http.pop(result["DBCluster"].get("DBClusterArn", ""), None)
            if record is not None:
                self._clusters.pop(record.arn, None)
        if record is not None:
            self._servers.remove(record)
            if self._capacity is not None:
                self._capacity.forget(record.identifier)
        return result

    def EnableHttpEndpoint(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Turn the Data API on for a cluster (Serverless v2 and provisioned)."""
        return self._set_http_endpoint(params["ResourceArn"], True, context)

    def DisableHttpEndpoint(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Turn the Data API off for a cluster (Serverless v2 and provisioned)."""
        return self._set_http_endpoint(params["ResourceArn"], False, context)

    def DescribeDBEngineVersions(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Aurora MySQL 3 (with Serverless v2 capacity limits) and PostgreSQL versions."""
        return engine_versions.describe(params)

    # ----- instances --------------------------------------------------------------------

    def CreateDBInstance(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """PostgreSQL gets a server of its own; an instance of a local cluster, the cluster's."""
        if self._postgres.handles(params):
            return self._postgres.create(params, context)
        result = self._moto("CreateDBInstance", params, context)
        if self._is_local(result["DBInstance"], context):
            self._lifecycles.instance_created(context, result["DBInstance"]["DBInstanceIdentifier"])
        self._patch_instance(result["DBInstance"], context)
        return result

    def DescribeDBInstances(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """moto's instances, with local endpoints for the instances of local clusters."""
        result = self._lifecycles.describe_instances(
            params, context, lambda: self._moto("DescribeDBInstances", params, context)
        )
        for instance in result.get("DBInstances", []):
            if instance.get("DBInstanceStatus") == "deleting":
                continue
            self._patch_instance(instance, context)
            self._postgres.patch(instance)
        return result

    def DeleteDBInstance(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto deletes the instance; its cluster forgets it, or its own server goes."""
        if (deleted := self._postgres.delete(params, context)) is not None:
            return deleted
        result = self._moto("DeleteDBInstance", params, context)
        instance = result["DBInstance"]
        self._patch_instance(instance, context)
        with self._lock:
            cluster = instance.get("DBClusterIdentifier") or ""
            record = self._find(context.region, context.account_id, cluster)
            if record is not None and instance["DBInstanceIdentifier"] in record.instance_ids:
                record.instance_ids.remove(instance["DBInstanceIdentifier"])
        if record is not None:
            self._lifecycles.instance_deleted(context, instance)
        return result

    def RebootDBInstance(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """moto's reboot; an instance of a local cluster applies the cluster's max_connections."""
        result = self._moto("RebootDBInstance", params, context)
        instance = result["DBInstance"]
        with self._lock:
            cluster = instance.get("DBClusterIdentifier") or ""
            record = self._find(context.region, context.account_id, cluster)
        if record is not None and record.port is not None:
            self._servers.apply_max_connections(record)
        self._patch_instance(instance, context)
        self._postgres.patch(instance)
        return result

    def CreateDBSubnetGroup(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Stored, no VPC placement enforced; a name in use is refused (moto replaced it)."""
        name = params["DBSubnetGroupName"]
        query = {"DBSubnetGroupName": name}
        if unless_missing(
            lambda: self._moto("DescribeDBSubnetGroups", query, context),
            "DBSubnetGroupNotFoundFault",
        ):
            raise ServiceError(
                "DBSubnetGroupAlreadyExists", f"The DB subnet group '{name}' already exists."
            )
        return self._moto("CreateDBSubnetGroup", params, context)

    # ----- the local cloud's lifecycle --------------------------------------------------

    def reset(self) -> None:
        """Forget every cluster (the local cloud wipes the engines itself)."""
        with self._lock:
            identifiers = [r.identifier for r in self._clusters.values()]
            self._clusters.clear()
            self._other_http.clear()
        self._postgres.reset()
        self._lifecycles.clear()
        if self._capacity is not None:
            for identifier in identifiers:
                self._capacity.forget(identifier)

    def shutdown(self) -> None:
        """Stop the ACU model."""
        with self._capacity_lock:
            self._closed = True
            monitor, self._capacity = self._capacity, None
        if monitor is not None:
            monitor.stop()

    def status(self) -> dict[str, Any]:
        """How many local clusters and PostgreSQL instances exist."""
        with self._lock:
            return {"clusters": len(self._clusters), "postgres_instances": self._postgres.count()}

    # ----- helpers ----------------------------------------------------------------------

    def _moto(self, operation: str, params: dict[str, Any], context: RequestContext) -> Any:
        return self.cloud.moto.call("rds", operation, params, context.region)

    def _find(self, region: str, account_id: str, cluster: str) -> ClusterRecord | None:
        """A cluster by ARN, or by identifier (stored lowercase, as RDS does)."""
        if cluster.startswith("arn:"):
            return self._clusters.get(cluster)
        found = (r for r in self._clusters.values() if r.named(region, account_id, cluster))
        return next(found, None)

    def _patch_cluster(
        self, cluster: dict[str, Any], context: RequestContext | None = None
    ) -> dict[str, Any]:
        """Put the local endpoint, port and Data API flag into moto's cluster description."""
        arn = cluster.get("DBClusterArn", "")
        with self._lock:
            if (record := self._clusters.get(arn)) is not None:
                self._servers.refresh(record)
                record.patch_cluster(cluster)
                if context is not None:
                    self._lifecycles.patch_cluster(context, cluster)
            elif arn in self._other_http:
                cluster["HttpEndpointEnabled"] = self._other_http[arn]
        return cluster

    def _patch_instance(self, instance: dict[str, Any], context: RequestContext) -> None:
        """Point an instance of a local cluster at the cluster's server."""
        with self._lock:
            cluster = instance.get("DBClusterIdentifier") or ""
            if (record := self._find(context.region, context.account_id, cluster)) is not None:
                self._servers.refresh(record)
                record.patch_instance(instance)
                self._lifecycles.patch_instance(context, instance)

    def _is_local(self, instance: dict[str, Any], context: RequestContext) -> bool:
        """Whether an instance belongs to one of the local Aurora clusters."""
        cluster = instance.get("DBClusterIdentifier") or ""
        with self._lock:
            return self._find(context.region, context.account_id, cluster) is not None

    def _check_new_cluster(self, identifier: str, context: RequestContext) -> None:
        """DBClusterAlreadyExistsFault for an identifier in use (moto would replace the cluster)."""
        query = {"DBClusterIdentifier": identifier}
        if unless_missing(
            lambda: self._moto("DescribeDBClusters", query, context), "DBClusterNotFoundFault"
        ):
            raise ServiceError("DBClusterAlreadyExistsFault", "DB Cluster already exists")

    def _abandon(self, record: ClusterRecord, context: RequestContext) -> None:
        """Undo a CreateDBCluster whose server did not start."""
        with self._lock:
            self._clusters.pop(record.arn, None)
        with contextlib.suppress(ServiceError):
            params = {"DBClusterIdentifier": record.identifier, "SkipFinalSnapshot": True}
            self._moto("DeleteDBCluster", params, context)
            self._drop_automated_snapshots(record.identifier, context)
        self._servers.discard(record)

    def _drop_automated_snapshots(self, identifier: str, context: RequestContext) -> None:
        """Delete a deleted cluster's automated snapshots, as RDS does by default.

        moto keeps them, so re-creating the cluster within the same minute would fail with
        DBClusterSnapshotAlreadyExistsFault (its snapshot is named after the minute).
        """
        params = {"DBClusterIdentifier": identifier, "SnapshotType": "automated"}
        found = self._moto("DescribeDBClusterSnapshots", params, context)
        for snapshot in found.get("DBClusterSnapshots", []):
            with contextlib.suppress(ServiceError):
                name = {"DBClusterSnapshotIdentifier": snapshot["DBClusterSnapshotIdentifier"]}
                self._moto("DeleteDBClusterSnapshot", name, context)

    def _set_http_endpoint(
        self, arn: str, enabled: bool, context: RequestContext
    ) -> dict[str, Any]:
        """Record the Data API flag of a cluster given by ARN."""
        with self._lock:
            record = self._clusters.get(arn)
            if record is not None:
                self._lifecycles.check_cluster_available(context, record.identifier)
                record.http_endpoint_enabled = enabled
                return {"ResourceArn": arn, "HttpEndpointEnabled": enabled}
        found: list[dict[str, Any]] = []
        if arn.startswith("arn:"):
            with contextlib.suppress(ServiceError):
                params = {"DBClusterIdentifier": arn}
                found = self._moto("DescribeDBClusters", params, context)["DBClusters"]
        if not found:
            raise ServiceError("ResourceNotFoundFault", f"DBCluster {arn} not found.", 404)
        with self._lock:
            self._other_http[found[0]["DBClusterArn"]] = enabled
        return {"ResourceArn": arn, "HttpEndpointEnabled": enabled}
