"""RDS for PostgreSQL instances: each a real PostgreSQL server on a loopback address of its own.

moto keeps the instance record (and the managed secret it creates); this module checks the
request as RDS does (`instance_rules.py`), starts the server in the background (the instance
is `creating` until it answers, then `available`) and rewrites moto's descriptions: the
endpoint is the server's address on 5432, the status is the server's, the secret is `active`
once the instance is. The RDS provider (`provider.py`) delegates instances outside a cluster
with Engine `postgres` here; how they differ from AWS is in its docstring.

AWS semantics kept:
- CreateDBInstance is checked as RDS checks it (identifier, class, storage and IOPS,
  MasterUsername, an 8 to 128 character password or ManageMasterUserPassword, DBName, engine
  version; a major alone means its newest minor). The instance has no Endpoint until it is
  `available`, so the `db_instance_available` waiter waits for the server.
- The managed secret `rds!db-...` holds {"username", "password"} only and is `active` once the
  instance is; moto deletes it with the instance.
- TLS is always on, with a certificate from the local CA naming the endpoint's address and
  AWS-style name. From PostgreSQL 15 on, as rds.force_ssl=1 in the default parameter group, a
  client without TLS gets "no pg_hba.conf entry ... no encryption"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html).
- max_connections is the default parameter group's LEAST({DBInstanceClassMemory/9531392}, 5000).
- DeleteDBInstance needs SkipFinalSnapshot or FinalDBSnapshotIdentifier, answers `deleting`,
  and removes the server and its data; DescribeDBInstances then answers DBInstanceNotFound.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import HOST
from ..engines import START_TIMEOUT, EngineEndpoint, EngineError, EngineManager
from ..loopback import own_address
from ..motogateway import MotoGateway
from ..registry import RequestContext
from . import engine_versions
from .instance_rules import (
    ENGINE,
    HOSTED_ZONE_ID,
    LICENSE,
    PORT,
    check_create,
    force_ssl,
    hostname,
    max_connections,
)
from .lifecycle import RdsLifecycles
from .passwords import generate_password, write_secret
from .state import combination

log = logging.getLogger("localcloud.rds")

# Each instance's own address: 127.0.8.1 and upward (proxies and caches use .2 to .7).
_ADDRESS_BLOCKS = range(8, 13)
_ADDRESS_ATTEMPTS = 3

MotoCall = Callable[[str, dict[str, Any], RequestContext], Any]


@dataclass
class InstanceRecord:
    """One PostgreSQL instance as the provider keeps it (guarded by PostgresInstances' lock)."""

    identifier: str
    arn: str
    region: str
    account_id: str
    master_username: str
    password: str = field(repr=False)
    database: str | None
    secret_arn: str | None
    instance_class: str
    engine_version: str
    hostname: str
    address: str | None = None  # its own loopback address; None: 127.0.0.1 at a free port
    status: str = "creating"  # creating -> available, or failed
    port: int | None = None  # once the server answers
    started: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def owner(self) -> str:
        """The engine manager's owner name of the instance's server."""
        return f"rds:{self.account_id}:{self.region}:db/{self.identifier}"

    def patch(self, instance: dict[str, Any], still_creating: bool = False) -> None:
        """Answer with the local server: status, endpoint, secret status, license.

        still_creating: the AWS timing profile keeps the instance `creating` for AWS's time.
        """
        status = "creating" if still_creating and self.status == "available" else self.status
        if status != "available":
            instance["DBInstanceStatus"] = status  # moto's says available at once
        instance["LicenseModel"] = LICENSE
        if self.port is not None and status == "available":
            host = self.address or HOST
            instance["Endpoint"] = {"Address": host, "Port": self.port}
            instance["Endpoint"]["HostedZoneId"] = HOSTED_ZONE_ID
        else:
            instance.pop("Endpoint", None)  # RDS has no endpoint before the instance is up
        if secret := instance.get("MasterUserSecret"):
            secret["SecretStatus"] = "active" if status == "available" else "creating"


class PostgresInstances:
    """Creates, describes and deletes the PostgreSQL instances, each on its own server."""

    def __init__(
        self, engines: EngineManager, moto: MotoGateway, call: MotoCall, lifecycles: RdsLifecycles
    ) -> None:
        self._engines = engines
        self._moto = moto  # for the managed secret
        self._call = call  # moto's RDS, as the provider calls it
        self._lifecycles = lifecycles  # AWS's creation and deletion times (AWS timing profile)
        self._lock = threading.Lock()
        self._records: dict[str, InstanceRecord] = {}  # by ARN

    @staticmethod
    def handles(params: dict[str, Any]) -> bool:
        """Whether a CreateDBInstance is an RDS for PostgreSQL instance (not in a cluster)."""
        return params.get("Engine") == ENGINE and not params.get("DBClusterIdentifier")

    def create(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Check as RDS does, let moto record it, and start its server in the background."""
        version = check_create(params, engine_versions.newest_postgres())
        instance = self._call("CreateDBInstance", params | {"EngineVersion": version}, context)
        instance = instance["DBInstance"]
        identifier = instance["DBInstanceIdentifier"]
        with self._lock:
            record = InstanceRecord(
                identifier=identifier,
                arn=instance["DBInstanceArn"],
                region=context.region,
                account_id=context.account_id,
                master_username=params["MasterUsername"],
                password=params.get("MasterUserPassword") or generate_password(),
                database=params.get("DBName"),
                secret_arn=(instance.get("MasterUserSecret") or {}).get("SecretArn"),
                instance_class=params["DBInstanceClass"],
                engine_version=version,
                hostname=hostname(identifier, context.account_id, context.region),
            )
            self._records[record.arn] = record
        self._lifecycles.instance_created(context, identifier)
        if record.secret_arn:
            write_secret(self._moto, record, fresh=True)  # moto wrote a fixed password
        record.patch(instance)  # before the server can start: the answer says `creating`
        starting = threading.Thread(target=self._start, args=(record,), name=f"rds-{identifier}")
        starting.daemon = True
        starting.start()
        return {"DBInstance": instance}

    def patch(self, instance: dict[str, Any]) -> None:
        """Rewrite moto's description of an instance that is one of ours."""
        with self._lock:
            record = self._records.get(instance.get("DBInstanceArn", ""))
            if record is not None:
                key = (record.account_id, record.region, record.identifier)
                record.patch(instance, still_creating=self._lifecycles.instances.creating(key))

    def delete(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any] | None:
        """Delete one of ours (server and data included); None if it is not one of ours."""
        record = self._named(params["DBInstanceIdentifier"], context)
        if record is None:
            return None
        if not params.get("SkipFinalSnapshot") and not params.get("FinalDBSnapshotIdentifier"):
            raise combination(
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."
            )
        record.started.wait(START_TIMEOUT)  # a server still starting is stopped once up
        result = self._call("DeleteDBInstance", params, context)
        with self._lock:
            self._records.pop(record.arn, None)
        with contextlib.suppress(EngineError, OSError):
            self._engines.remove(record.owner)
        instance = result["DBInstance"]
        record.patch(instance)
        instance["DBInstanceStatus"] = "deleting"
        instance.pop("Endpoint", None)
        self._lifecycles.instance_deleted(context, instance)  # still described while deleting
        return result

    def reset(self) -> None:
        """Forget every instance (the local cloud wipes the engines itself)."""
        with self._lock:
            self._records.clear()

    def count(self) -> int:
        """How many PostgreSQL instances exist."""
        with self._lock:
            return len(self._records)

    # ----- helpers ----------------------------------------------------------------------

    def _named(self, identifier: str, context: RequestContext) -> InstanceRecord | None:
        """One of ours by identifier (stored lowercase, as RDS does) or ARN."""
        with self._lock:
            if identifier.startswith("arn:"):
                return self._records.get(identifier)
            wanted = (context.region, context.account_id, identifier.lower())
            for record in self._records.values():
                if (record.region, record.account_id, record.identifier) == wanted:
                    return record
        return None

    def _start(self, record: InstanceRecord) -> None:
        """Start the instance's server; the instance becomes available, or failed."""
        tried: set[str] = set()
        try:
            self._engines.remove(record.owner)  # data left by an earlier daemon's instance
            for attempt in range(_ADDRESS_ATTEMPTS):
                with self._lock:
                    taken = {r.address for r in self._records.values() if r.address} | tried
                    record.address = own_address(_ADDRESS_BLOCKS, [PORT], taken, "instances")
                try:
                    endpoint = self._start_server(record)
                    break
                except EngineError:
                    # Another local cloud on this machine may have taken the address meanwhile.
                    if record.address is None or attempt == _ADDRESS_ATTEMPTS - 1:
                        raise
                    tried.add(record.address)
        except (EngineError, OSError):
            log.exception("instance %s: the local PostgreSQL server did not start", record.arn)
            with self._lock:
                record.status = "failed"
        else:
            with self._lock:
                record.port, record.status = endpoint.port, "available"
        finally:
            record.started.set()

    def _start_server(self, record: InstanceRecord) -> EngineEndpoint:
        """The instance's PostgreSQL server, TLS on, on its address (or a free port)."""
        return self._engines.postgres(
            record.owner,
            user=record.master_username,
            password=record.password,
            database=record.database,
            max_connections=max_connections(record.instance_class),
            tls=True,  # RDS for PostgreSQL always offers TLS
            require_tls=force_ssl(record.engine_version),
            host=record.address,
            port=PORT if record.address else None,
            hostnames=(record.hostname,),
        )
