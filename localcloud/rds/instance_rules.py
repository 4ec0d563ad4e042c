"""RDS for PostgreSQL instances: the request checks RDS applies, and values derived from the class.

Error codes and messages are RDS's (CreateDBInstance API reference,
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html, and the
texts RDS answers with). Instance class memory is from the instance class tables
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Summary.html).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .passwords import check_password
from .state import combination, invalid

ENGINE = "postgres"
PORT = 5432
LICENSE = "postgresql-license"
FORCE_SSL_FROM_MAJOR = 15  # rds.force_ssl defaults to 1 from PostgreSQL 15 on
MAX_PASSWORD = 128  # RDS for PostgreSQL: 8 to 128 characters
# The default parameter group's max_connections: LEAST({DBInstanceClassMemory/9531392},5000).
BYTES_PER_CONNECTION = 9531392
MAX_CONNECTIONS_CAP = 5000
GIB = 1024**3
# Route 53 zone of RDS endpoints; us-east-1's (the course's region) stands in for every region.
HOSTED_ZONE_ID = "Z2R2ITUGPM61AM"

_IDENTIFIER = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")  # no "--", no trailing hyphen
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_DB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")
_RESERVED_USERS = {"rdsadmin", "rdsrepladmin", "rdsproxyadmin", "rds_superuser"}
_IDENTIFIER_RULE = (
    "Identifiers must begin with a letter; must contain only ASCII letters, digits, and "
    "hyphens; and must not end with a hyphen or contain two consecutive hyphens."
)
_NAME_RULE = (
    "Identifiers must begin with a letter; must contain only ASCII letters, digits, and "
    "underscores; and must not be a reserved word."
)

# Memory (GiB) by size within each family that runs RDS for PostgreSQL 13 and later.
_BURSTABLE = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GENERAL = {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "8xlarge": 128}
_GENERAL |= {"12xlarge": 192, "16xlarge": 256, "24xlarge": 384}
_MEMORY = {size: gib * 2 for size, gib in _GENERAL.items()}
CLASS_MEMORY_GIB: dict[str, int] = {
    f"db.{family}.{size}": gib
    for families, sizes in (
        (("t3", "t4g"), _BURSTABLE),
        (("m5", "m6g", "m6i", "m7g", "m7i"), _GENERAL),
        (("r5", "r6g", "r6i", "r7g", "r7i"), _MEMORY),
    )
    for family in families
    for size, gib in sizes.items()
}

# Storage types and their AllocatedStorage range (GiB) for RDS for PostgreSQL.
STORAGE_RANGES = {
    "gp2": (20, 65536),
    "gp3": (20, 65536),
    "io1": (100, 65536),
    "io2": (100, 65536),
    "standard": (5, 3072),
}
GP3_BASELINE_BELOW_GIB = 400  # below this gp3 has fixed IOPS and throughput


def max_connections(instance_class: str) -> int:
    """The default max_connections of a class, from the formula with the class's full memory."""
    memory = CLASS_MEMORY_GIB[instance_class] * GIB
    return min(memory // BYTES_PER_CONNECTION, MAX_CONNECTIONS_CAP)


def major_of(version: str) -> int:
    """The major version of a PostgreSQL engine version ("16.4" -> 16)."""
    return int(version.split(".")[0])


def force_ssl(version: str) -> bool:
    """rds.force_ssl of the default parameter group: on from PostgreSQL 15."""
    return major_of(version) >= FORCE_SSL_FROM_MAJOR


def hostname(identifier: str, account_id: str, region: str) -> str:
    """The AWS-style endpoint name (12 characters per account and region), in the certificate."""
    digest = hashlib.sha256(f"{account_id}:{region}".encode()).hexdigest()
    middle = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:12])
    return f"{identifier}.{middle}.{region}.rds.amazonaws.com"


def check_create(params: dict[str, Any], versions: dict[int, str]) -> str:
    """Refuse what RDS refuses in a CreateDBInstance for postgres; return the engine version.

    versions maps each supported major to its newest minor version (RDS picks that one when
    only a major, or nothing, is given: the newest major's).
    """
    identifier = params.get("DBInstanceIdentifier") or ""
    if not (1 <= len(identifier) <= 63 and _IDENTIFIER.fullmatch(identifier)):
        raise invalid(
            f"The parameter DBInstanceIdentifier is not a valid identifier. {_IDENTIFIER_RULE}"
        )
    version = _engine_version(params.get("EngineVersion"), versions)
    instance_class = params.get("DBInstanceClass") or ""
    if instance_class not in CLASS_MEMORY_GIB:
        raise combination(
            "RDS does not support creating a DB instance with the following combination: "
            f"DBInstanceClass={instance_class}, Engine={ENGINE}, EngineVersion={version}, "
            f"LicenseModel={LICENSE}. For supported combinations of instance class and "
            "database engine version, see the documentation."
        )
    _check_storage(params)
    username = params.get("MasterUsername")
    if not username:
        raise invalid("The parameter MasterUsername must be provided and must not be blank.")
    if not _USERNAME.fullmatch(username) or username.lower() in _RESERVED_USERS:
        raise invalid(f"The parameter MasterUsername is not a valid identifier. {_NAME_RULE}")
    database = params.get("DBName")
    if database is not None and not _DB_NAME.fullmatch(database):
        raise invalid(f"The parameter DBName is not a valid identifier. {_NAME_RULE}")
    given = params.get("MasterUserPassword")
    if params.get("ManageMasterUserPassword"):
        if given is not None:
            raise combination(
                "You can't specify MasterUserPassword when ManageMasterUserPassword is on."
            )
    else:
        check_password(given or "", longest=MAX_PASSWORD)
    return version


def _engine_version(given: str | None, versions: dict[int, str]) -> str:
    """The version RDS would create: the given one, or the newest of a given major."""
    if not given:
        return versions[max(versions)]
    match = _VERSION.fullmatch(given)
    if match is None or int(match.group(1)) not in versions:
        raise combination(f"Cannot find version {given} for {ENGINE}")
    return given if match.group(2) is not None else versions[int(match.group(1))]


def _check_storage(params: dict[str, Any]) -> None:
    """StorageType, AllocatedStorage and Iops as RDS checks them for postgres."""
    iops = params.get("Iops")
    storage_type = params.get("StorageType") or ("io1" if iops else "gp3")
    if storage_type not in STORAGE_RANGES:
        raise invalid(f"Invalid storage type: {storage_type}")
    size = params.get("AllocatedStorage")
    if size is None:
        return  # moto's default of 20 GiB applies
    low, high = STORAGE_RANGES[storage_type]
    if not low <= int(size) <= high:
        raise combination(
            f"Invalid storage size for engine name {ENGINE} and storage type {storage_type}: {size}"
        )
    tuned = iops or params.get("StorageThroughput")
    if storage_type == "gp3" and tuned and int(size) < GP3_BASELINE_BELOW_GIB:
        raise combination(
            f"You can't specify IOPS or storage throughput for engine {ENGINE} and a storage "
            f"size less than {GP3_BASELINE_BELOW_GIB}."
        )
