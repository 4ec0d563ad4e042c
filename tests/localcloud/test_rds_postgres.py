"""RDS for PostgreSQL instances against the session's daemon: life cycle, TLS, secret, errors.

One instance (managed secret, PostgreSQL 17, TLS required) serves the module; the deletion
test makes its own, on PostgreSQL 14 where rds.force_ssl is off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import certifi
import psycopg
import pytest
from botocore.exceptions import ClientError
from live_fixtures import unique

import helpers
from localcloud.certificates import ca_bundle
from localcloud.config import state_dir
from localcloud.rds import engine_versions, instance_rules

MICRO = "db.t4g.micro"
WAIT = {"Delay": 1, "MaxAttempts": 120}


def create_params(identifier: str, **overrides: Any) -> dict[str, Any]:
    """A CreateDBInstance as the course sends it: smallest class, 20 GiB gp3, managed secret."""
    params: dict[str, Any] = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": MICRO,
        "Engine": "postgres",
        "AllocatedStorage": 20,
        "StorageType": "gp3",
        "MasterUsername": "course_admin",
        "ManageMasterUserPassword": True,
        "DBName": "app",
        "PubliclyAccessible": False,
        "StorageEncrypted": True,
        "MultiAZ": False,
        "BackupRetentionPeriod": 0,
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def describe(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def connect(instance: dict[str, Any], password: str, **extra: Any) -> psycopg.Connection:
    endpoint = instance["Endpoint"]
    login = {"user": instance["MasterUsername"], "password": password, "dbname": "app"}
    return psycopg.connect(
        host=endpoint["Address"], port=endpoint["Port"], connect_timeout=5, **login, **extra
    )


def verified() -> dict[str, str]:
    """libpq settings that check the certificate against the local CA and the address."""
    return {"sslmode": "verify-full", "sslrootcert": str(ca_bundle(state_dir()))}


@pytest.fixture(scope="module")
def rds(module_lab: helpers.Lab) -> Any:
    return module_lab.client("rds")


@pytest.fixture(scope="module")
def created(rds: Any) -> Iterator[dict[str, Any]]:
    """The module's instance: CreateDBInstance's own answer, before any wait."""
    identifier = unique("pytest-pg")
    answer = rds.create_db_instance(**create_params(identifier, EngineVersion="17"))
    yield answer["DBInstance"]
    rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
    rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)


@pytest.fixture(scope="module")
def instance(rds: Any, created: dict[str, Any]) -> dict[str, Any]:
    """The module's instance once the db_instance_available waiter has passed."""
    identifier = created["DBInstanceIdentifier"]
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)
    return describe(rds, identifier)


@pytest.fixture(scope="module")
def password(module_lab: helpers.Lab, instance: dict[str, Any]) -> str:
    secrets = module_lab.client("secretsmanager")
    value = secrets.get_secret_value(SecretId=instance["MasterUserSecret"]["SecretArn"])
    return json.loads(value["SecretString"])["password"]


def test_creating_then_available_on_its_own_address(created, instance):
    assert created["DBInstanceStatus"] == "creating"
    assert "Endpoint" not in created  # as on RDS: no endpoint before the instance is up
    assert created["MasterUserSecret"]["SecretStatus"] == "creating"

    assert instance["DBInstanceStatus"] == "available"
    endpoint = instance["Endpoint"]
    assert endpoint["Port"] == 5432
    assert endpoint["Address"].startswith("127.0.") and endpoint["Address"] != "127.0.0.1"
    assert endpoint["HostedZoneId"]
    assert instance["EngineVersion"].startswith("17.")  # a major alone: its newest minor
    assert instance["DBParameterGroups"][0]["DBParameterGroupName"] == "default.postgres17"
    assert (instance["DBName"], instance["MasterUsername"]) == ("app", "course_admin")
    assert instance["MasterUserSecret"]["SecretStatus"] == "active"
    assert set(instance["MasterUserSecret"]) >= {"SecretArn", "SecretStatus", "KmsKeyId"}


def test_managed_secret_holds_username_and_password_that_log_in(module_lab, instance):
    arn = instance["MasterUserSecret"]["SecretArn"]
    secrets = module_lab.client("secretsmanager")
    assert secrets.describe_secret(SecretId=arn)["Name"].startswith("rds!db-")
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert set(value) == {"username", "password"}
    assert value["username"] == "course_admin"
    assert len(value["password"]) >= 20  # generated, not moto's fixed placeholder
    with connect(instance, value["password"], **verified()) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("course_admin", "app")  # DBName was created, and is the master's
        conn.execute("CREATE SCHEMA demo")  # the master user may build the schema
        conn.execute("DROP SCHEMA demo")


def test_tls_is_required_and_verifies_against_the_local_ca(instance, password):
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect(instance, password, sslmode="disable").close()  # rds.force_ssl=1
    with connect(instance, password, **verified()) as conn:
        ssl = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert ssl.fetchone() == (True,)
    # libpq's default (sslmode=prefer) silently uses TLS, so plain client code just works.
    connect(instance, password).close()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(instance, password, sslmode="verify-full", sslrootcert=certifi.where()).close()


def test_max_connections_follows_the_instance_class(instance, password):
    with connect(instance, password, **verified()) as conn:
        value = int(conn.execute("SHOW max_connections").fetchone()[0])
    # LEAST({DBInstanceClassMemory/9531392}, 5000) with the class's 1 GiB.
    assert value == (1024**3) // 9531392 == 112


def test_deletion_removes_the_server_and_its_data(rds):
    identifier = unique("pytest-pg-del")
    params = create_params(
        identifier,
        EngineVersion="14",
        ManageMasterUserPassword=None,
        MasterUserPassword="Course-pw-1234",
    )
    rds.create_db_instance(**params)
    available = rds.get_waiter("db_instance_available")
    available.wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)
    first = describe(rds, identifier)
    assert first["EngineVersion"].startswith("14.")
    # PostgreSQL 14: rds.force_ssl is 0, so a client without TLS is let in.
    with connect(first, "Course-pw-1234", sslmode="disable") as conn:
        conn.execute("CREATE TABLE kept (id INT)")
        conn.execute("INSERT INTO kept VALUES (1)")

    code, message = error_of(rds.delete_db_instance, DBInstanceIdentifier=identifier)
    assert code == "InvalidParameterCombination" and "SkipFinalSnapshot" in message
    deleted = rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
    assert deleted["DBInstance"]["DBInstanceStatus"] == "deleting"
    rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)
    assert error_of(rds.describe_db_instances, DBInstanceIdentifier=identifier)[0] == (
        "DBInstanceNotFound"
    )
    with pytest.raises(psycopg.OperationalError):
        connect(first, "Course-pw-1234", sslmode="disable").close()

    rds.create_db_instance(**params)  # the same identifier again: a new, empty database
    try:
        available.wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)
        again = describe(rds, identifier)
        with connect(again, "Course-pw-1234", sslmode="disable") as conn:
            found = conn.execute("SELECT to_regclass('public.kept')").fetchone()
            assert found == (None,)
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


@pytest.mark.parametrize(
    ("overrides", "code", "fragment"),
    [
        ({"DBInstanceClass": "db.t2.micro"}, "InvalidParameterCombination", "DBInstanceClass"),
        ({"AllocatedStorage": 10}, "InvalidParameterCombination", "Invalid storage size"),
        ({"Iops": 3000}, "InvalidParameterCombination", "less than 400"),
        ({"MasterUsername": None}, "InvalidParameterValue", "MasterUsername"),
        ({"MasterUsername": "rdsadmin"}, "InvalidParameterValue", "MasterUsername"),
        ({"MasterUserPassword": "Course-pw-1234"}, "InvalidParameterCombination", "Manage"),
        (
            {"ManageMasterUserPassword": None, "MasterUserPassword": "short"},
            "InvalidParameterValue",
            "shorter than 8",
        ),
        ({"EngineVersion": "9.6"}, "InvalidParameterCombination", "Cannot find version"),
        ({"DBName": "1app"}, "InvalidParameterValue", "DBName"),
        ({"DBInstanceIdentifier": "bad--name"}, "InvalidParameterValue", "DBInstanceIdentifier"),
    ],
)
def test_bad_requests_get_rds_errors(rds, overrides, code, fragment):
    params = create_params(unique("pytest-pg-bad"), **overrides)
    got_code, message = error_of(rds.create_db_instance, **params)
    assert (got_code, fragment in message) == (code, True), message


def test_an_existing_identifier_is_refused(rds, created):
    params = create_params(created["DBInstanceIdentifier"])
    assert error_of(rds.create_db_instance, **params)[0] == "DBInstanceAlreadyExists"


def test_engine_versions_offer_a_default_postgres(rds):
    versions = rds.describe_db_engine_versions(Engine="postgres", DefaultOnly=True)
    (default,) = versions["DBEngineVersions"]
    assert default["Engine"] == "postgres"
    assert default["DBParameterGroupFamily"] == f"postgres{default['MajorEngineVersion']}"
    every = rds.describe_db_engine_versions(Engine="postgres")["DBEngineVersions"]
    assert default["EngineVersion"] in {v["EngineVersion"] for v in every}


def test_class_memory_and_versions_without_a_daemon():
    assert instance_rules.max_connections("db.t4g.small") == 2 * 1024**3 // 9531392 == 225
    assert instance_rules.max_connections("db.r6g.16xlarge") == 5000  # 512 GiB: capped
    newest = engine_versions.newest_postgres()
    params = create_params("pg-unit", MasterUserPassword="Course-pw-1234")
    params.pop("ManageMasterUserPassword")
    assert instance_rules.check_create(params, newest) == newest[max(newest)]  # no version
    assert instance_rules.check_create(params | {"EngineVersion": "16"}, newest) == newest[16]
    assert instance_rules.check_create(params | {"EngineVersion": "16.3"}, newest) == "16.3"
    assert instance_rules.force_ssl("15.2") and not instance_rules.force_ssl("14.19")
