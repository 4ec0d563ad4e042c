"""RDS for PostgreSQL for the course: its network, the instance, the CA bundle, the teardown.

In the order AWS needs them:
1. `ensure_network`: in the default VPC, a security group for the functions that connect
   (no inbound rules) and one for the database (PostgreSQL's 5432 from that group only),
   and a DB subnet group over the default subnets.
2. `ensure_instance`: a single-AZ instance (the smallest class, 20 GiB gp3, not publicly
   accessible, no automated backups) whose master password RDS generates and keeps in a
   Secrets Manager secret (`ManageMasterUserPassword`): nobody ever types or sees it.
   PostgreSQL 15 and later require TLS (`rds.force_ssl` is on by default).
3. `build_context_with_ca`: a copy of an image's build context plus the CA bundle that signs
   the database's certificate (`rds-ca-bundle.pem`), so the code can verify the server with
   `sslmode=verify-full`. On AWS that is RDS's global bundle
   (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html); locally the
   local cloud's CA (with the machine's CAs).

Teardown deletes the instance (and so its managed secret) after the functions that use it and
waits until it is gone; then its subnet group and the security groups, once Lambda has
released the functions' network interfaces.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from localcloud import client as localcloud

from . import cleanup, ec2, naming
from .aurora import ensure_subnet_group
from .costs import Price
from .lab import REPO_ROOT, Lab
from .pacing import Wait
from .waiting import wait_for

KIND = "postgres instance"
CLIENT_GROUP_KIND = "postgres client security group"
GROUP_KIND = "postgres security group"
CLIENT_GROUP_NAME = "db-clients"
GROUP_NAME = "postgres"
ENGINE = "postgres"
PORT = 5432
MASTER_USERNAME = "course_admin"
INSTANCE_CLASS = "db.t4g.micro"  # 2 vCPUs (burstable), 1 GiB: the smallest current class
STORAGE_GIB = 20  # gp3's minimum
CA_BUNDLE_NAME = "rds-ca-bundle.pem"
RDS_GLOBAL_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
CONTEXTS_DIR = REPO_ROOT / "build" / "contexts"
_FAILED = {"failed", "incompatible-network", "incompatible-parameters", "storage-full"}
# How long an instance takes: seconds locally; 5 to 15 minutes on AWS (RDS's own estimate in
# the console is "several minutes"), deleting one about as long.
_WAITS = {
    "local": {"available": Wait(5, 0.5, 180), "deleted": Wait(3, 0.5, 180)},
    "aws": {"available": Wait(600, 15, 2400), "deleted": Wait(420, 15, 2400)},
}


@dataclass(frozen=True)
class PostgresNetwork:
    """Where the database lives and who may reach it."""

    vpc_id: str
    subnet_ids: list[str]  # for the functions: two Availability Zones
    subnet_group: str  # the DB subnet group: every default subnet
    client_group_id: str  # for the functions that connect (no inbound rules)
    database_group_id: str  # the database's: 5432 from the client group only


@dataclass(frozen=True)
class InstanceInfo:
    """What a notebook needs to know about an instance (from describe_db_instances)."""

    identifier: str
    arn: str
    status: str
    engine_version: str
    instance_class: str
    storage_gib: int
    storage_type: str
    address: str  # a DNS name on AWS, the instance's own loopback address locally
    port: int
    database: str
    secret_arn: str  # the RDS-managed secret: {"username", "password"} only
    publicly_accessible: bool


def ensure_network(lab: Lab, pattern: str) -> PostgresNetwork:
    """Security groups functions -> database and a DB subnet group, in the default VPC."""
    ec2_client = lab.client("ec2")
    vpc_id = ec2_client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][
        0
    ]["VpcId"]
    subnets = ec2_client.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"
    ]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in sorted(subnets, key=_zone)}
    clients = ec2.ensure_security_group(
        lab,
        pattern,
        CLIENT_GROUP_NAME,
        vpc_id,
        description="Functions that connect to the PostgreSQL instance (no inbound traffic)",
        ledger_kind=CLIENT_GROUP_KIND,
    )
    database = ec2.ensure_security_group(
        lab,
        pattern,
        GROUP_NAME,
        vpc_id,
        description="RDS for PostgreSQL: 5432 from the course's functions only",
        ledger_kind=GROUP_KIND,
    )
    ec2.allow_from_group(lab, database["GroupId"], clients["GroupId"], PORT, "functions")
    return PostgresNetwork(
        vpc_id=vpc_id,
        subnet_ids=[by_zone[zone] for zone in sorted(by_zone)[:2]],
        subnet_group=ensure_subnet_group(lab, pattern, "postgres"),
        client_group_id=clients["GroupId"],
        database_group_id=database["GroupId"],
    )


def ensure_instance(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    network: PostgresNetwork,
    database: str,
    instance_class: str = INSTANCE_CLASS,
    storage_gib: int = STORAGE_GIB,
) -> InstanceInfo:
    """Get or create a private PostgreSQL instance with a managed master secret; wait for it."""
    identifier = lab.name(pattern, name, 63)
    rds = lab.client("rds")
    if _describe(rds, identifier) is None:
        version = default_engine_version(lab)
        rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass=instance_class,
            Engine=ENGINE,
            **({"EngineVersion": version} if version else {}),
            DBName=database,
            MasterUsername=MASTER_USERNAME,
            ManageMasterUserPassword=True,  # RDS makes the password and keeps it in a secret
            AllocatedStorage=storage_gib,
            StorageType="gp3",
            StorageEncrypted=True,
            PubliclyAccessible=False,  # reachable from inside the VPC only
            MultiAZ=False,
            BackupRetentionPeriod=0,  # no automated backups: a course database
            DBSubnetGroupName=network.subnet_group,
            VpcSecurityGroupIds=[network.database_group_id],
            Tags=naming.tag_list(lab.tags(pattern)),
        )
        lab.ledger.record(KIND, identifier, pattern)
    instance = wait_for(
        lambda: _available(rds, identifier),
        what=f"PostgreSQL instance {identifier}",
        pace=_WAITS[lab.backend]["available"],
        hint="A new instance takes 5 to 15 minutes on AWS; re-run this cell to keep waiting.",
    )
    return instance_info_from(instance)


def instance_info(lab: Lab, pattern: str, name: str) -> InstanceInfo | None:
    """The instance `ensure_instance(lab, pattern, name, ...)` made, or None."""
    found = _describe(lab.client("rds"), lab.name(pattern, name, 63))
    return None if found is None else instance_info_from(found)


def instance_info_from(instance: dict[str, Any]) -> InstanceInfo:
    """An InstanceInfo from one describe_db_instances entry."""
    endpoint = instance.get("Endpoint") or {}
    return InstanceInfo(
        identifier=instance["DBInstanceIdentifier"],
        arn=instance.get("DBInstanceArn", ""),
        status=instance.get("DBInstanceStatus", ""),
        engine_version=instance.get("EngineVersion", ""),
        instance_class=instance.get("DBInstanceClass", ""),
        storage_gib=int(instance.get("AllocatedStorage", 0)),
        storage_type=instance.get("StorageType", ""),
        address=endpoint.get("Address", ""),
        port=int(endpoint.get("Port", PORT)),
        database=instance.get("DBName", ""),
        secret_arn=(instance.get("MasterUserSecret") or {}).get("SecretArn", ""),
        publicly_accessible=bool(instance.get("PubliclyAccessible")),
    )


def default_engine_version(lab: Lab) -> str | None:
    """The region's default PostgreSQL version (None: let RDS choose)."""
    try:
        versions = lab.client("rds").describe_db_engine_versions(Engine=ENGINE, DefaultOnly=True)
    except ClientError:
        return None
    found = versions.get("DBEngineVersions") or []
    return found[0]["EngineVersion"] if found else None


def build_context_with_ca(lab: Lab, source: Path | str) -> Path:
    """A copy of a build context under build/contexts/ with the database's CA bundle added.

    The copy keeps code/ exactly what the notebook writes; the Dockerfile copies
    `rds-ca-bundle.pem` into the image next to the code.
    """
    source = Path(source).resolve()
    bundle = ca_bundle(lab)
    # One copy per bundle: two local clouds (each with its own CA) never share a context.
    digest = hashlib.sha256(bundle).hexdigest()[:8]
    target = CONTEXTS_DIR / f"{source.parent.name}-{source.name}-{digest}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / CA_BUNDLE_NAME).write_bytes(bundle)
    return target


def ca_bundle(lab: Lab) -> bytes:
    """The PEM bundle that verifies this backend's database certificates."""
    if lab.is_local:
        return Path(localcloud.trust_environment()["SSL_CERT_FILE"]).read_bytes()
    with urllib.request.urlopen(RDS_GLOBAL_BUNDLE_URL, timeout=30) as answer:  # noqa: S310
        return answer.read()


def _zone(subnet: dict[str, Any]) -> str:
    return subnet["AvailabilityZone"]


def _describe(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def _available(rds: Any, identifier: str) -> dict[str, Any] | None:
    """The instance once it is available; raise on a state it will not leave by itself."""
    instance = _describe(rds, identifier)
    if instance is None:
        raise RuntimeError(f"instance {identifier} disappeared while it was being created")
    status = instance.get("DBInstanceStatus", "")
    if status in _FAILED:
        raise RuntimeError(
            f"instance {identifier} is {status}: tear it down (helpers.cleanup.teardown) "
            "and run the notebook again"
        )
    if status == "deleting":
        raise RuntimeError(f"instance {identifier} is being deleted; wait and re-run this cell")
    return instance if status == "available" else None


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course PostgreSQL instance (all runs); Aurora's instances are another kind."""
    for page in lab.client("rds").get_paginator("describe_db_instances").paginate():
        for instance in page["DBInstances"]:
            parts = naming.parse_name(instance["DBInstanceIdentifier"])
            if parts is not None and instance.get("Engine") == ENGINE:
                yield cleanup.Resource(
                    KIND, instance["DBInstanceIdentifier"], parts.pattern, parts.run_id
                )


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete an instance without a final snapshot (its managed secret goes with it); wait."""
    rds = lab.client("rds")
    identifier = resource.identifier
    instance = _describe(rds, identifier)
    if instance is not None and instance.get("DBInstanceStatus") != "deleting":
        cleanup.retry_while(  # an instance still creating or modifying refuses the delete
            lab,
            lambda: rds.delete_db_instance(
                DBInstanceIdentifier=identifier,
                SkipFinalSnapshot=True,
                DeleteAutomatedBackups=True,
            ),
            ("InvalidDBInstanceState",),
            f"deleting {identifier} (it is still changing)",
            2400,
        )
    wait_for(
        lambda: _describe(rds, identifier) is None,
        what=f"deleting PostgreSQL instance {identifier}",
        pace=_WAITS[lab.backend]["deleted"],
    )


RESOURCE_KINDS = [
    # The functions that query the database go first.
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function",)),
    ec2.released_group_kind(CLIENT_GROUP_KIND, CLIENT_GROUP_NAME, after=("lambda function", KIND)),
    ec2.released_group_kind(GROUP_KIND, GROUP_NAME, after=("lambda function", KIND)),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`:
# https://aws.amazon.com/rds/postgresql/pricing/ (Single-AZ, on-demand).
PRICES = {
    "rds_postgres_t4g_micro_hour": Price(0.016, "instance-hour", "db.t4g.micro, Single-AZ"),
    "rds_gp3_gb_month": Price(0.115, "GB-month", "gp3 storage, Single-AZ"),
    # The managed master secret is billed as any secret: https://aws.amazon.com/secrets-manager/pricing/
    "secret_month": Price(0.40, "secret-month", "plus $0.05 per 10,000 API calls"),
}
