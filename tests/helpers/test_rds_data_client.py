"""Data API parameters and results without a cloud, and ensure_cluster's input checks."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from helpers import aurora, naming, pacing, rds_postgres
from helpers import cleanup as helpers_cleanup
from helpers.aurora import teardown as aurora_teardown
from helpers.rds_data import DataApi, format_timestamp, from_field, to_parameters

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:scd-dev-19-db"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1-AbCdEf"
TARGET = {"resourceArn": CLUSTER, "secretArn": SECRET, "database": "labdb"}


def _one(value):
    """The single SqlParameter for {'p': value}."""
    (parameter,) = to_parameters({"p": value})
    assert parameter["name"] == "p"
    return parameter


# --- to_parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "hint"),
    [
        ("hello", {"stringValue": "hello"}, None),
        ("", {"stringValue": ""}, None),
        (True, {"booleanValue": True}, None),
        (False, {"booleanValue": False}, None),
        (42, {"longValue": 42}, None),
        (-(2**63), {"longValue": -(2**63)}, None),
        (2.5, {"doubleValue": 2.5}, None),
        (Decimal("12.34"), {"stringValue": "12.34"}, "DECIMAL"),
        (Decimal("1E+2"), {"stringValue": "100"}, "DECIMAL"),
        (dt.date(2026, 1, 2), {"stringValue": "2026-01-02"}, "DATE"),
        (dt.time(3, 4, 5), {"stringValue": "03:04:05"}, "TIME"),
        (dt.time(3, 4, 5, 678_900), {"stringValue": "03:04:05.678"}, "TIME"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), {"stringValue": "2026-01-02 03:04:05"}, "TIMESTAMP"),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            {"stringValue": "12345678-1234-5678-1234-567812345678"},
            "UUID",
        ),
        ({"a": [1, 2]}, {"stringValue": '{"a": [1, 2]}'}, "JSON"),
        ([1, "x"], {"stringValue": '[1, "x"]'}, "JSON"),
        (b"\x00\xff", {"blobValue": b"\x00\xff"}, None),
        (bytearray(b"ab"), {"blobValue": b"ab"}, None),
        (None, {"isNull": True}, None),
    ],
)
def test_every_python_type_gets_its_field_and_type_hint(value, field, hint):
    parameter = _one(value)
    assert parameter["value"] == field
    assert parameter.get("typeHint") == hint
    assert ("typeHint" in parameter) == (hint is not None)


def test_bool_is_checked_before_int():
    assert _one(True)["value"] == {"booleanValue": True}
    assert _one(1)["value"] == {"longValue": 1}
    assert isinstance(_one(1)["value"]["longValue"], int)


def test_datetime_is_checked_before_date():
    assert _one(dt.datetime(2026, 1, 2))["typeHint"] == "TIMESTAMP"
    assert _one(dt.date(2026, 1, 2))["typeHint"] == "DATE"


def test_parameters_keep_order_and_names_lose_a_leading_colon():
    parameters = to_parameters({"b": 1, ":a": "x"})
    assert [p["name"] for p in parameters] == ["b", "a"]
    assert to_parameters(None) == [] and to_parameters({}) == []


def test_numpy_and_pandas_values_from_dataframes():
    assert _one(np.int64(7))["value"] == {"longValue": 7}
    assert _one(np.float32(0.5))["value"] == {"doubleValue": 0.5}
    assert _one(np.bool_(True))["value"] == {"booleanValue": True}
    assert _one(float("nan"))["value"] == {"isNull": True}
    assert _one(pd.NaT)["value"] == {"isNull": True}
    assert _one(pd.Timestamp("2026-01-02 03:04:05.5"))["value"] == {
        "stringValue": "2026-01-02 03:04:05.500"
    }


def test_unsupported_values_say_what_is_supported():
    with pytest.raises(TypeError, match=r"'p'.*set.*str, bool, int"):
        to_parameters({"p": {1, 2}})
    with pytest.raises(ValueError, match="64-bit"):
        to_parameters({"p": 2**63})
    with pytest.raises(TypeError, match="names"):
        to_parameters({1: "x"})


# --- timestamps ----------------------------------------------------------------------------


def test_timestamp_milliseconds_are_truncated_not_rounded():
    value = dt.datetime(2026, 1, 2, 3, 4, 5, 999_999)
    assert format_timestamp(value) == "2026-01-02 03:04:05.999"
    assert format_timestamp(value.replace(microsecond=1_000)) == "2026-01-02 03:04:05.001"
    assert format_timestamp(value.replace(microsecond=0)) == "2026-01-02 03:04:05"


def test_aware_timestamps_are_sent_in_utc_and_naive_ones_as_they_are():
    berlin = dt.timezone(dt.timedelta(hours=2))
    aware = dt.datetime(2026, 7, 1, 1, 30, tzinfo=berlin)
    assert _one(aware)["value"] == {"stringValue": "2026-06-30 23:30:00"}
    assert _one(dt.datetime(2026, 7, 1, 1, 30, tzinfo=dt.UTC))["value"]["stringValue"] == (
        "2026-07-01 01:30:00"
    )
    assert _one(dt.datetime(2026, 7, 1, 1, 30))["value"]["stringValue"] == "2026-07-01 01:30:00"
    assert _one(dt.time(1, 30, tzinfo=berlin))["value"] == {"stringValue": "23:30:00"}
    assert "T" not in _one(aware)["value"]["stringValue"]  # AWS rejects ISO 8601's 'T' and 'Z'


# --- results -------------------------------------------------------------------------------

RECORDS_RESPONSE = {
    "columnMetadata": [
        {"name": "id", "label": "id", "typeName": "BIGINT"},
        {"name": "name", "label": "customer", "typeName": "VARCHAR"},
        {"name": "price", "label": "price", "typeName": "DECIMAL"},
        {"name": "active", "label": "active", "typeName": "BIT"},
        {"name": "score", "label": "score", "typeName": "DOUBLE"},
        {"name": "photo", "label": "photo", "typeName": "BLOB"},
        {"name": "tags", "label": "tags", "typeName": "_text"},
    ],
    "records": [
        [
            {"longValue": 1},
            {"stringValue": "Ada"},
            {"stringValue": "12.34"},
            {"booleanValue": True},
            {"doubleValue": 0.5},
            {"blobValue": b"\x01"},
            {"arrayValue": {"stringValues": ["a", "b"]}},
        ],
        [
            {"longValue": 2},
            {"isNull": True},
            {"stringValue": "0.00"},
            {"booleanValue": False},
            {"isNull": True},
            {"isNull": True},
            {"arrayValue": {"arrayValues": [{"longValues": [1]}, {"longValues": [2, 3]}]}},
        ],
    ],
    "numberOfRecordsUpdated": 0,
}


def test_records_with_column_metadata_become_a_frame_with_labels():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    with Stubber(api.client) as stub:
        stub.add_response(
            "execute_statement",
            RECORDS_RESPONSE,
            {**TARGET, "sql": "SELECT 1", "includeResultMetadata": True},
        )
        result = api.query("SELECT 1", as_json=False)
    assert list(result.columns) == ["id", "customer", "price", "active", "score", "photo", "tags"]
    assert result.iloc[0].tolist() == [1, "Ada", "12.34", True, 0.5, b"\x01", ["a", "b"]]
    assert result.loc[1, "customer"] is None and result.loc[1, "tags"] == [[1], [2, 3]]


def test_fields_decode_to_python_values():
    assert from_field({"isNull": True}) is None
    assert from_field({"longValue": 5}) == 5
    assert from_field({"blobValue": "AQI="}) == b"\x01\x02"  # base64 on the wire, raw JSON
    assert from_field({"arrayValue": {"doubleValues": [0.5]}}) == [0.5]


def test_formatted_records_become_a_frame_and_parameters_are_sent():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    rows = [{"id": 1, "customer": "Ada", "active": True}, {"id": 2, "customer": None}]
    with Stubber(api.client) as stub:
        stub.add_response(
            "execute_statement",
            {"formattedRecords": json.dumps(rows)},
            {
                **TARGET,
                "sql": "SELECT * FROM t WHERE id > :low",
                "parameters": [{"name": "low", "value": {"longValue": 0}}],
                "formatRecordsAs": "JSON",
            },
        )
        result = api.query("SELECT * FROM t WHERE id > :low", {"low": 0})
    assert list(result.columns) == ["id", "customer", "active"]
    assert result["id"].tolist() == [1, 2] and result.loc[0, "customer"] == "Ada"


def test_empty_results_give_empty_frames():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    with Stubber(api.client) as stub:
        stub.add_response("execute_statement", {"formattedRecords": "[]"})
        stub.add_response("execute_statement", {"records": []})
        assert api.query("SELECT 1").empty
        assert api.query("SELECT 1", as_json=False).empty


# --- transactions and batches ----------------------------------------------------------------


def _client():
    return boto3.client(
        "rds-data",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_transaction_commits_and_statements_carry_its_id():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    ending = {"resourceArn": CLUSTER, "secretArn": SECRET, "transactionId": "tx-1"}
    sql = "INSERT INTO t (name) VALUES (:name)"
    with Stubber(api.client) as stub:
        stub.add_response("begin_transaction", {"transactionId": "tx-1"}, TARGET)
        stub.add_response(
            "execute_statement",
            {"numberOfRecordsUpdated": 1},
            {
                **TARGET,
                "sql": sql,
                "transactionId": "tx-1",
                "parameters": [{"name": "name", "value": {"stringValue": "Ada"}}],
            },
        )
        stub.add_response(
            "commit_transaction", {"transactionStatus": "Transaction Committed"}, ending
        )
        with api.transaction() as transaction_id:
            assert transaction_id == "tx-1"
            assert api.execute(sql, {"name": "Ada"}) == {"numberOfRecordsUpdated": 1}
        stub.assert_no_pending_responses()
    assert api.transaction_id is None


def test_transaction_rolls_back_when_the_block_raises():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    ending = {"resourceArn": CLUSTER, "secretArn": SECRET, "transactionId": "tx-2"}
    with Stubber(api.client) as stub:
        stub.add_response("begin_transaction", {"transactionId": "tx-2"}, TARGET)
        stub.add_response(
            "rollback_transaction", {"transactionStatus": "Rollback Complete"}, ending
        )
        with pytest.raises(ZeroDivisionError), api.transaction():
            1 / 0  # noqa: B018
        stub.assert_no_pending_responses()
    assert api.transaction_id is None


def test_batch_sends_one_parameter_set_per_row_without_a_trailing_semicolon():
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    with Stubber(api.client) as stub:
        stub.add_response(
            "batch_execute_statement",
            {"updateResults": [{"generatedFields": [{"longValue": 1}]}, {}]},
            {
                **TARGET,
                "sql": "INSERT INTO t (n) VALUES (:n)",
                "parameterSets": [
                    [{"name": "n", "value": {"longValue": 1}}],
                    [{"name": "n", "value": {"isNull": True}}],
                ],
            },
        )
        response = api.batch("INSERT INTO t (n) VALUES (:n);", [{"n": 1}, {"n": None}])
    assert len(response["updateResults"]) == 2
    assert api.batch("INSERT INTO t (n) VALUES (:n)", []) == {"updateResults": []}


def test_a_resuming_database_is_waited_for(monkeypatch):
    api = DataApi(_client(), CLUSTER, SECRET, "labdb")
    monkeypatch.setattr("helpers.waiting.time.sleep", lambda seconds: None)
    with Stubber(api.client) as stub:
        stub.add_client_error("execute_statement", "DatabaseResumingException", "resuming")
        stub.add_response("execute_statement", {"numberOfRecordsUpdated": 0})
        assert api.execute("SELECT 1") == {"numberOfRecordsUpdated": 0}
        stub.add_client_error("execute_statement", "DatabaseErrorException", "bad SQL")
        with pytest.raises(ClientError, match="bad SQL"):
            api.execute("SELEC 1")


# --- ensure_cluster input checks (no AWS calls) ------------------------------------------------


class NoCallsLab:
    """A lab that names resources but fails on any AWS call."""

    run_id = "dev"
    region = "us-east-1"
    is_local = True
    pace = pacing.LOCAL

    def name(self, pattern: str, name: str, max_length: int = 64) -> str:
        return naming.resource_name(self.run_id, pattern, name, max_length)

    def client(self, service: str):
        raise AssertionError(f"no AWS call expected, got a {service} client request")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_acu": 0.3}, r"min_acu must be 0 \(auto-pause\) or 0\.5 to max_acu in steps"),
        ({"min_acu": -1}, "min_acu must be"),
        ({"min_acu": True}, "min_acu must be"),
        ({"min_acu": "1"}, "min_acu must be"),
        ({"min_acu": 0.5, "max_acu": 300}, r"max_acu must be 1 to 256 in steps of 0\.5"),
        ({"min_acu": 0.5, "max_acu": 0.5}, "max_acu must be 1 to 256"),
        ({"min_acu": 0.5, "max_acu": 2.25}, "max_acu must be"),
        ({"min_acu": 8, "max_acu": 4}, r"min_acu \(8\) must not be larger than max_acu \(4\)"),
        ({"min_acu": 0, "seconds_until_auto_pause": 60}, "between 300 and 86400 seconds"),
        ({"min_acu": 0, "seconds_until_auto_pause": 90_000}, "between 300 and 86400"),
        ({"min_acu": 0, "seconds_until_auto_pause": 300.5}, "whole number of seconds"),
        ({"min_acu": 0.5, "database": "lab-db"}, "database must be 1 to 64 letters"),
        ({"min_acu": 0.5, "database": "1lab"}, "database must be"),
    ],
)
def test_ensure_cluster_rejects_bad_input_before_any_aws_call(arguments, message):
    with pytest.raises(ValueError, match=message):
        aurora.ensure_cluster(NoCallsLab(), "19", "db", **arguments)


def test_bad_names_are_refused_before_any_aws_call():
    with pytest.raises(ValueError, match="single hyphens"):
        aurora.ensure_cluster(NoCallsLab(), "19", "my--db", min_acu=0.5)
    with pytest.raises(ValueError, match="lowercase letters"):
        aurora.ensure_cluster(NoCallsLab(), "19", "my_db", min_acu=0.5)


def test_scaling_configuration_sends_auto_pause_only_when_min_is_zero():
    assert aurora.scaling_configuration(0, 4, 600) == {
        "MinCapacity": 0.0,
        "MaxCapacity": 4.0,
        "SecondsUntilAutoPause": 600,
    }
    assert aurora.scaling_configuration(0.5, 256, 300) == {"MinCapacity": 0.5, "MaxCapacity": 256.0}


def test_identifiers_leave_room_for_the_writer_suffix():
    identifier = aurora.cluster_identifier(NoCallsLab(), "19", "x" * 80)
    assert len(identifier + aurora.WRITER_SUFFIX) <= 63
    assert aurora.cluster_identifier(NoCallsLab(), "19", "db") == "scd-dev-19-db"


class VersionsLab(NoCallsLab):
    """A lab whose RDS client lists the given engine versions."""

    def __init__(self, versions=None, error=None) -> None:
        client = boto3.client(
            "rds", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        self.stub = Stubber(client)
        if error:
            self.stub.add_client_error("describe_db_engine_versions", error)
        else:
            self.stub.add_response("describe_db_engine_versions", {"DBEngineVersions": versions})
        self.stub.activate()
        self._client = client

    def client(self, service: str):
        return self._client


def _version(number: str, min_capacity: float | None, modes=("provisioned",), status="available"):
    version = {
        "Engine": "aurora-mysql",
        "EngineVersion": number,
        "SupportedEngineModes": list(modes),
        "Status": status,
    }
    if min_capacity is not None:
        version["ServerlessV2FeaturesSupport"] = {"MinCapacity": min_capacity, "MaxCapacity": 256}
    return version


def test_engine_version_is_the_newest_3x_that_fits_serverless_v2():
    versions = [
        _version("5.7.mysql_aurora.2.12.1", 0.5),
        _version("8.0.mysql_aurora.3.04.3", 0.5),
        _version("8.0.mysql_aurora.3.10.0", 0),
        _version("8.0.mysql_aurora.3.09.0", 0),
        _version("8.0.mysql_aurora.3.11.0", None),  # no Serverless v2
        _version("8.0.mysql_aurora.3.12.0", 0, modes=("serverless",)),
        _version("8.0.mysql_aurora.3.13.0", 0, status="deprecated"),
    ]
    assert aurora.pick_engine_version(VersionsLab(versions), 0) == "8.0.mysql_aurora.3.10.0"
    only_old = [_version("8.0.mysql_aurora.3.04.3", 0.5), _version("8.0.mysql_aurora.3.02.0", 0.5)]
    assert aurora.pick_engine_version(VersionsLab(only_old), 0.5) == "8.0.mysql_aurora.3.04.3"
    # min 0 needs auto-pause support: none here, so the documented fallback
    assert aurora.pick_engine_version(VersionsLab(only_old), 0) == aurora.FALLBACK_ENGINE_VERSION


def test_engine_version_falls_back_when_the_api_gives_nothing():
    assert aurora.pick_engine_version(VersionsLab([]), 0.5) == aurora.FALLBACK_ENGINE_VERSION
    lab = VersionsLab(error="AccessDenied")
    assert aurora.pick_engine_version(lab, 0) == aurora.FALLBACK_ENGINE_VERSION


# --- aurora teardown on AWS-like timing (fake RDS: deletes take several polls) ----------------


class SlowRds:
    """An RDS client whose instance goes through the given statuses, one per describe."""

    def __init__(self, statuses: list[str | None], delete_errors: list[str] = ()) -> None:
        self.statuses = list(statuses)
        self.delete_errors = list(delete_errors)
        self.deletes = 0

    def describe_db_instances(self, DBInstanceIdentifier: str):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            raise ClientError({"Error": {"Code": "DBInstanceNotFound"}}, "DescribeDBInstances")
        instance = {"DBInstanceIdentifier": DBInstanceIdentifier, "DBInstanceStatus": status}
        return {"DBInstances": [instance]}

    def delete_db_instance(self, DBInstanceIdentifier: str):
        self.deletes += 1
        if self.delete_errors:
            code = self.delete_errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "DeleteDBInstance")
        return {}


class SlowLab(NoCallsLab):
    """A lab whose rds client is a SlowRds."""

    def __init__(self, rds: SlowRds) -> None:
        self.rds = rds

    def client(self, service: str):
        return self.rds


def _delete_writer(rds: SlowRds, monkeypatch) -> None:
    monkeypatch.setattr("helpers.waiting.time.sleep", lambda seconds: None)
    resource = helpers_cleanup.Resource(aurora.INSTANCE_KIND, "scd-dev-19-db-writer", "19", "dev")
    helpers_cleanup.declared_kinds()[aurora.INSTANCE_KIND].delete(SlowLab(rds), resource)


def test_an_instance_already_being_deleted_is_waited_for_not_deleted_again(monkeypatch):
    rds = SlowRds(["deleting", "deleting", "deleting", None])
    _delete_writer(rds, monkeypatch)
    assert rds.deletes == 0 and rds.statuses == [None]


def test_a_busy_instance_is_deleted_once_it_accepts_and_then_waited_for(monkeypatch):
    rds = SlowRds(
        ["modifying", "available", "deleting", "deleting", None],
        delete_errors=["InvalidDBInstanceState"],
    )
    _delete_writer(rds, monkeypatch)
    assert rds.deletes == 2 and rds.statuses == [None]


def test_other_delete_errors_are_not_swallowed(monkeypatch):
    with pytest.raises(ClientError, match="AccessDenied"):
        _delete_writer(SlowRds(["available"], delete_errors=["AccessDenied"]), monkeypatch)


def test_teardown_kinds_delete_instances_before_clusters_before_subnet_groups():
    after = {kind.name: kind.after for kind in aurora_teardown.RESOURCE_KINDS}
    assert after[aurora.CLUSTER_KIND] == (aurora.INSTANCE_KIND,)
    # DB subnet groups serve Aurora clusters and pattern 24's PostgreSQL instance alike.
    assert after[aurora.SUBNET_GROUP_KIND] == (aurora.CLUSTER_KIND, rds_postgres.KIND)
    assert "lambda function" in after[aurora.INSTANCE_KIND]
    assert set(aurora.CLUSTER_KINDS) <= set(helpers_cleanup.declared_kinds())
