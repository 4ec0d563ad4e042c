"""Local Aurora MySQL on the live daemon: a MariaDB per cluster, managed secrets, Data API flag."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
from botocore.exceptions import ClientError
from live_fixtures import AURORA_ENGINE_VERSION, AuroraClusters

import helpers
from localcloud import daemon
from localcloud.config import FAKE_ACCOUNT_ID

pytestmark = pytest.mark.engines
MOTO_PASSWORD = "P@55w0rd!"  # what moto alone writes into every managed secret


def _unique(prefix: str) -> str:
    """A cluster identifier of its own per test."""
    return f"pytest-{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def rds(lab: helpers.Lab) -> Any:
    """The RDS client of the test lab."""
    return lab.client("rds")


@pytest.fixture
def aurora(aurora_clusters: AuroraClusters) -> Callable[..., dict[str, Any]]:
    """aurora(prefix, writer=True, **overrides): a new Aurora MySQL cluster, deleted after."""
    return aurora_clusters.create


def _cluster(rds: Any, identifier: str) -> dict[str, Any]:
    """The cluster's description."""
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def _secret(lab: helpers.Lab, cluster: dict[str, Any]) -> dict[str, str]:
    """The username and password in the cluster's managed secret."""
    arn = cluster["MasterUserSecret"]["SecretArn"]
    value = lab.client("secretsmanager").get_secret_value(SecretId=arn)
    return json.loads(value["SecretString"])


def _connect(cluster: dict[str, Any], password: str, user: str = "admin") -> Any:
    """A pymysql connection to the cluster's endpoint and database."""
    return pymysql.connect(
        host=cluster["Endpoint"],
        port=cluster["Port"],
        user=user,
        password=password,
        database=cluster.get("DatabaseName"),
        connect_timeout=5,
        autocommit=True,
    )


def _refused(cluster: dict[str, Any], password: str) -> bool:
    """True if the server refuses this password (MySQL error 1045)."""
    try:
        _connect(cluster, password).close()
    except pymysql.err.OperationalError as error:
        return error.args[0] == 1045
    return False


def _error(call: Callable[[], Any]) -> tuple[str, int]:
    """The AWS error code and HTTP status a call fails with."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _engine(cloud: daemon.DaemonInfo, region: str, identifier: str) -> dict[str, Any] | None:
    """The daemon's engine row for a cluster, if any."""
    owner = f"rds:{FAKE_ACCOUNT_ID}:{region}:cluster/{identifier}"
    rows = daemon.call(cloud, "status")["engines"]
    return next((row for row in rows if row["owner"] == owner), None)


def test_cluster_is_a_real_server_with_a_random_managed_password(lab, rds, aurora):
    cluster = aurora("main")
    rds.get_waiter("db_cluster_available").wait(
        DBClusterIdentifier=cluster["DBClusterIdentifier"], WaiterConfig={"Delay": 1}
    )
    assert cluster["Status"] == "available"
    assert cluster["Endpoint"] == cluster["ReaderEndpoint"] == "127.0.0.1"
    assert isinstance(cluster["Port"], int) and cluster["Port"] > 0
    assert cluster["MasterUserSecret"]["SecretStatus"] == "active"
    assert cluster["ServerlessV2ScalingConfiguration"]["MaxCapacity"] == 4
    instance = rds.describe_db_instances(
        DBInstanceIdentifier=f"{cluster['DBClusterIdentifier']}-w1"
    )
    endpoint = instance["DBInstances"][0]["Endpoint"]
    assert (endpoint["Address"], endpoint["Port"]) == ("127.0.0.1", cluster["Port"])

    secret = _secret(lab, cluster)
    assert secret["username"] == "admin"
    assert secret["password"] != MOTO_PASSWORD and len(secret["password"]) >= 20
    described = lab.client("secretsmanager").describe_secret(
        SecretId=cluster["MasterUserSecret"]["SecretArn"]
    )
    labels = [stage for stages in described["VersionIdsToStages"].values() for stage in stages]
    assert labels == ["AWSCURRENT"]  # like a secret RDS just created: no AWSPREVIOUS

    with _connect(cluster, secret["password"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(50))")
        cur.execute("INSERT INTO notes VALUES (%s, %s)", (1, "hello"))
        cur.execute("SELECT body, DATABASE() FROM notes WHERE id = 1")
        assert cur.fetchone() == ("hello", "labdb")
    assert _refused(cluster, secret["password"] + "x")
    assert _refused(cluster, MOTO_PASSWORD)


def test_two_clusters_get_their_own_servers_and_passwords(lab, aurora):
    first = aurora("one", writer=False)
    second = aurora(
        "two", writer=False, ManageMasterUserPassword=None, MasterUserPassword="Second-pass-1"
    )
    assert first["Port"] != second["Port"]
    assert "MasterUserSecret" not in second
    first_password = _secret(lab, first)["password"]
    assert first_password != "Second-pass-1"
    assert _refused(second, first_password) and _refused(first, "Second-pass-1")
    again = {
        "DBClusterIdentifier": first["DBClusterIdentifier"],
        "Engine": "aurora-mysql",
        "MasterUsername": "admin",
        "MasterUserPassword": "Another-pass-1",
    }
    assert _error(lambda: lab.client("rds").create_db_cluster(**again)) == (
        "DBClusterAlreadyExistsFault",
        400,
    )
    assert _cluster(lab.client("rds"), first["DBClusterIdentifier"])["Port"] == first["Port"]
    with _connect(first, first_password) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE only_here (id INT)")
    with _connect(second, "Second-pass-1") as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()


def test_data_api_flag_follows_enable_and_disable_http_endpoint(rds, aurora):
    cluster = aurora("http", writer=False)
    identifier, arn = cluster["DBClusterIdentifier"], cluster["DBClusterArn"]
    assert cluster["HttpEndpointEnabled"] is False

    answer = rds.enable_http_endpoint(ResourceArn=arn)
    assert (answer["ResourceArn"], answer["HttpEndpointEnabled"]) == (arn, True)
    assert _cluster(rds, identifier)["HttpEndpointEnabled"] is True
    # ModifyDBCluster's EnableHttpEndpoint is for Serverless v1 only: no effect here.
    rds.modify_db_cluster(DBClusterIdentifier=identifier, EnableHttpEndpoint=False)
    assert _cluster(rds, identifier)["HttpEndpointEnabled"] is True

    assert rds.disable_http_endpoint(ResourceArn=arn)["HttpEndpointEnabled"] is False
    assert _cluster(rds, identifier)["HttpEndpointEnabled"] is False

    enabled_at_creation = aurora("http-on", writer=False, EnableHttpEndpoint=True)
    assert enabled_at_creation["HttpEndpointEnabled"] is True

    unknown = arn.replace(identifier, _unique("missing"))
    assert _error(lambda: rds.enable_http_endpoint(ResourceArn=unknown)) == (
        "ResourceNotFoundFault",
        404,
    )


def test_modify_master_password_reaches_the_server(lab, rds, aurora):
    plain = aurora(
        "pw", writer=False, ManageMasterUserPassword=None, MasterUserPassword="First-pw-1"
    )
    rds.modify_db_cluster(
        DBClusterIdentifier=plain["DBClusterIdentifier"],
        MasterUserPassword="Second-pw-2",
        ApplyImmediately=True,
    )
    assert _refused(plain, "First-pw-1")
    _connect(plain, "Second-pw-2").close()

    managed = aurora("pw-managed", writer=False)
    identifier = managed["DBClusterIdentifier"]
    code = _error(
        lambda: rds.modify_db_cluster(
            DBClusterIdentifier=identifier, MasterUserPassword="Nope-pw-3"
        )
    )
    assert code == ("InvalidParameterCombination", 400)

    before = _secret(lab, managed)["password"]
    rds.modify_db_cluster(
        DBClusterIdentifier=identifier, RotateMasterUserPassword=True, ApplyImmediately=True
    )
    after = _secret(lab, managed)["password"]
    assert after != before and _refused(managed, before)
    _connect(managed, after).close()
    previous = lab.client("secretsmanager").get_secret_value(
        SecretId=managed["MasterUserSecret"]["SecretArn"], VersionStage="AWSPREVIOUS"
    )
    assert json.loads(previous["SecretString"])["password"] == before

    unmanaged = rds.modify_db_cluster(
        DBClusterIdentifier=identifier,
        ManageMasterUserPassword=False,
        MasterUserPassword="Own-pw-4",
        ApplyImmediately=True,
    )["DBCluster"]
    assert "MasterUserSecret" not in unmanaged
    _connect(managed, "Own-pw-4").close()
    code = _error(
        lambda: lab.client("secretsmanager").get_secret_value(
            SecretId=managed["MasterUserSecret"]["SecretArn"]
        )
    )
    assert code[0] == "ResourceNotFoundException"


def test_scaling_configuration_changes_are_kept(rds, aurora):
    cluster = aurora("scale", writer=False)
    wanted = {"MinCapacity": 0.5, "MaxCapacity": 8.0}
    rds.modify_db_cluster(
        DBClusterIdentifier=cluster["DBClusterIdentifier"],
        ServerlessV2ScalingConfiguration=wanted,
        ApplyImmediately=True,
    )
    scaling = _cluster(rds, cluster["DBClusterIdentifier"])["ServerlessV2ScalingConfiguration"]
    assert {k: scaling[k] for k in wanted} == wanted


def test_delete_stops_the_server_and_removes_its_data(cloud, lab, rds, aurora):
    cluster = aurora("gone")
    identifier = cluster["DBClusterIdentifier"]
    engine = _engine(cloud, lab.region, identifier)
    assert engine is not None and engine["running"] and Path(engine["data_dir"]).exists()
    with _connect(cluster, _secret(lab, cluster)["password"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE was_here (id INT)")

    code = _error(
        lambda: rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    )
    assert code == ("InvalidDBClusterStateFault", 400)
    assert _engine(cloud, lab.region, identifier)["running"]

    rds.delete_db_instance(DBInstanceIdentifier=f"{identifier}-w1")
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    rds.get_waiter("db_cluster_deleted").wait(
        DBClusterIdentifier=identifier, WaiterConfig={"Delay": 1}
    )
    assert _engine(cloud, lab.region, identifier) is None
    assert not _alive(engine["pid"])
    assert not Path(engine["data_dir"]).exists()
    code = _error(
        lambda: lab.client("secretsmanager").get_secret_value(
            SecretId=cluster["MasterUserSecret"]["SecretArn"]
        )
    )
    assert code[0] == "ResourceNotFoundException"

    # A teardown and a re-run within the same minute: the name is free again, the data fresh.
    again = rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="Again-pw-1",
        DatabaseName="labdb",
    )["DBCluster"]
    try:
        with _connect(again, "Again-pw-1") as conn, conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            assert cur.fetchall() == ()
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)


def test_create_refuses_what_aurora_refuses(rds):
    base = {
        "DBClusterIdentifier": _unique("bad"),
        "Engine": "aurora-mysql",
        "EngineVersion": AURORA_ENGINE_VERSION,
        "MasterUsername": "admin",
    }
    both = {**base, "ManageMasterUserPassword": True, "MasterUserPassword": "Good-pw-1"}
    assert _error(lambda: rds.create_db_cluster(**both))[0] == "InvalidParameterCombination"
    for password in ("short", "has/slash-1", 'has"quote-1', "x" * 42):
        params = {**base, "MasterUserPassword": password}
        assert _error(lambda p=params: rds.create_db_cluster(**p))[0] == "InvalidParameterValue"
    bad_user = {**base, "MasterUsername": "1admin", "MasterUserPassword": "Good-pw-1"}
    assert _error(lambda: rds.create_db_cluster(**bad_user))[0] == "InvalidParameterValue"
    assert rds.describe_db_clusters()["DBClusters"] == [] or all(
        c["DBClusterIdentifier"] != base["DBClusterIdentifier"]
        for c in rds.describe_db_clusters()["DBClusters"]
    )


def test_other_engines_stay_with_moto(rds):
    identifier = _unique("pg")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="pgadmin",
        MasterUserPassword="Good-pw-1",
    )["DBCluster"]
    try:
        assert cluster["Endpoint"] != "127.0.0.1"  # moto's record only: no local server
        rds.enable_http_endpoint(ResourceArn=cluster["DBClusterArn"])
        assert _cluster(rds, identifier)["HttpEndpointEnabled"] is True
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)


def test_engine_versions_report_serverless_v2_limits(rds):
    pages = rds.get_paginator("describe_db_engine_versions").paginate(Engine="aurora-mysql")
    versions = {v["EngineVersion"]: v for page in pages for v in page["DBEngineVersions"]}
    assert versions[AURORA_ENGINE_VERSION]["ServerlessV2FeaturesSupport"]["MinCapacity"] == 0
    older = versions["8.0.mysql_aurora.3.07.1"]["ServerlessV2FeaturesSupport"]
    assert older["MinCapacity"] == 0.5
    assert all("provisioned" in v["SupportedEngineModes"] for v in versions.values())
    one = rds.describe_db_engine_versions(
        Engine="aurora-mysql", EngineVersion=AURORA_ENGINE_VERSION
    )
    assert [v["EngineVersion"] for v in one["DBEngineVersions"]] == [AURORA_ENGINE_VERSION]


def _alive(pid: int | None) -> bool:
    """True if the process exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_modifying_an_unknown_cluster_is_db_cluster_not_found(rds):
    modify = {"DBClusterIdentifier": _unique("nope"), "ApplyImmediately": True}
    assert _error(lambda: rds.modify_db_cluster(**modify)) == ("DBClusterNotFoundFault", 404)


def test_a_subnet_group_name_in_use_is_refused(lab, rds):
    subnets = [s["SubnetId"] for s in lab.client("ec2").describe_subnets()["Subnets"]][:2]
    name = _unique("subnets")
    rds.create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription="first", SubnetIds=subnets
    )
    try:
        again = {"DBSubnetGroupName": name, "DBSubnetGroupDescription": "second"}
        assert _error(lambda: rds.create_db_subnet_group(**again, SubnetIds=subnets[:1])) == (
            "DBSubnetGroupAlreadyExists",
            400,
        )
        found = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
        assert [(g["DBSubnetGroupDescription"], len(g["Subnets"])) for g in found] == [("first", 2)]
    finally:
        rds.delete_db_subnet_group(DBSubnetGroupName=name)
