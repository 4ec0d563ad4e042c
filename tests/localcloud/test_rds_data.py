"""The RDS Data API on a live local cloud: real SQL on an Aurora MySQL cluster's MariaDB server.

Every test talks to the Data API through boto3 and a `data_api` fixture: a real cluster made
through the RDS API of the session daemon (tests/conftest.py starts it with a 2 s transaction
idle limit). test_rds_data_engine.py drives the provider alone, on a private MariaDB, with the
same `DataApi` client and helpers from here.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import AuroraClusters
from polling import wait_until

import helpers

pytestmark = pytest.mark.engines
SIZE_ERROR = "Database returned more than the allowed response size limit"


@dataclass
class DataApi:
    """A cluster with the Data API enabled, its secret, and boto3 clients for both."""

    client: Any  # rds-data
    secrets: Any  # secretsmanager
    cluster_arn: str
    secret_arn: str
    username: str
    database: str
    no_endpoint_arn: str  # a cluster whose Data API is not enabled
    idle_seconds: float  # the backend's transaction idle limit

    def run(self, sql: str, *parameters: dict[str, Any], **options: Any) -> dict[str, Any]:
        """ExecuteStatement on the cluster's database."""
        return self.client.execute_statement(
            resourceArn=self.cluster_arn,
            secretArn=self.secret_arn,
            database=self.database,
            sql=sql,
            parameters=list(parameters),
            **options,
        )

    def table(self, columns: str) -> str:
        """Create a table of its own for one test and return its name."""
        name = f"t_{uuid.uuid4().hex[:10]}"
        self.run(f"CREATE TABLE {name} ({columns})")
        return name

    def secret(self, value: dict[str, Any] | str) -> str:
        """A new secret holding value (JSON unless a string); returns its ARN."""
        text = value if isinstance(value, str) else json.dumps(value)
        name = f"pytest-data-api-{uuid.uuid4().hex[:8]}"
        return self.secrets.create_secret(Name=name, SecretString=text)["ARN"]

    def begin(self) -> str:
        """BeginTransaction on the cluster's database."""
        return self.client.begin_transaction(
            resourceArn=self.cluster_arn, secretArn=self.secret_arn, database=self.database
        )["transactionId"]

    def end(self, transaction_id: str, commit: bool = True) -> dict[str, Any]:
        """CommitTransaction or RollbackTransaction."""
        call = self.client.commit_transaction if commit else self.client.rollback_transaction
        return call(
            resourceArn=self.cluster_arn, secretArn=self.secret_arn, transactionId=transaction_id
        )


def p(name: str, type_hint: str | None = None, **value: Any) -> dict[str, Any]:
    """One SqlParameter: p("id", longValue=1), p("day", "DATE", stringValue="2024-01-31")."""
    parameter: dict[str, Any] = {"name": name, "value": value}
    if type_hint:
        parameter["typeHint"] = type_hint
    return parameter


def error(call: Callable[[], Any]) -> tuple[str, int, str]:
    """The AWS error code, HTTP status and message a call fails with."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def values(response: dict[str, Any]) -> list[list[Any]]:
    """The records as plain values (the one member each Field has)."""
    return [[next(iter(f.values())) for f in row] for row in response["records"]]


# ----- the live backend --------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_api(module_lab: helpers.Lab) -> Iterator[DataApi]:
    """A Data API cluster on the session daemon (and one without the Data API)."""
    rds = module_lab.client("rds")
    clusters = AuroraClusters(rds)
    scaling = {"MinCapacity": 0.5, "MaxCapacity": 4}  # no auto-pause while the tests run

    def available(prefix: str) -> dict[str, Any]:
        """A new cluster with a writer, once it is available (the local cloud is quick)."""
        identifier = clusters.create(prefix, ServerlessV2ScalingConfiguration=scaling)[
            "DBClusterIdentifier"
        ]
        return wait_until(
            lambda: (found := clusters.describe(identifier))["Status"] == "available" and found,
            what=f"cluster {identifier} to be available",
            timeout=120,
            interval=0.5,
        )

    try:
        cluster = available("data")
        rds.enable_http_endpoint(ResourceArn=cluster["DBClusterArn"])
        other = available("nodata")
        yield DataApi(
            client=module_lab.client("rds-data"),
            secrets=module_lab.client("secretsmanager"),
            cluster_arn=cluster["DBClusterArn"],
            secret_arn=cluster["MasterUserSecret"]["SecretArn"],
            username="admin",
            database="labdb",
            no_endpoint_arn=other["DBClusterArn"],
            idle_seconds=2.0,  # LOCALCLOUD_DATA_API_TRANSACTION_IDLE_SECONDS in conftest.py
        )
    finally:
        clusters.delete_all()


# ----- statements and values ---------------------------------------------------------------


def test_execute_statement_inserts_and_selects(data_api):
    table = data_api.table("id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40)")
    inserted = data_api.run(
        f"INSERT INTO {table} (name) VALUES (:name)", p("name", stringValue="a")
    )
    assert inserted["numberOfRecordsUpdated"] == 1
    assert inserted["generatedFields"] == [{"longValue": 1}]
    assert "records" not in inserted
    selected = data_api.run(f"SELECT id, name FROM {table}")
    assert selected["records"] == [[{"longValue": 1}, {"stringValue": "a"}]]
    assert selected["numberOfRecordsUpdated"] == 0
    assert "columnMetadata" not in selected


def test_every_field_type_and_type_hint_round_trips(data_api):
    table = data_api.table(
        "id INT AUTO_INCREMENT PRIMARY KEY, l BIGINT, d DOUBLE, b BOOLEAN, bl BLOB,"
        " s VARCHAR(40), n VARCHAR(10) NULL, da DATE, ti TIME(3), ts DATETIME(3),"
        " de DECIMAL(12,3), js JSON, u CHAR(36)"
    )
    uid = "123e4567-e89b-12d3-a456-4266141740ab"
    data_api.run(
        f"INSERT INTO {table} (l, d, b, bl, s, n, da, ti, ts, de, js, u)"
        " VALUES (:l, :d, :b, :bl, :s, :n, :da, :ti, :ts, :de, :js, :u)",
        p("l", longValue=-(2**62)),
        p("d", doubleValue=2.5),
        p("b", booleanValue=True),
        p("bl", blobValue=b"\x00\x01\xffbin"),
        p("s", stringValue="héllo ✓"),
        p("n", isNull=True),
        p("da", "DATE", stringValue="2024-02-29"),
        p("ti", "TIME", stringValue="13:14:15.250"),
        p("ts", "TIMESTAMP", stringValue="2024-02-29 13:14:15.123"),
        p("de", "DECIMAL", stringValue="123456789.125"),
        p("js", "JSON", stringValue='{"a": [1, 2]}'),
        p("u", "UUID", stringValue=uid),
    )
    row = data_api.run(f"SELECT l, d, b, bl, s, n, da, ti, ts, de, js, u FROM {table}")
    assert row["records"] == [
        [
            {"longValue": -(2**62)},
            {"doubleValue": 2.5},
            {"booleanValue": True},
            {"blobValue": b"\x00\x01\xffbin"},
            {"stringValue": "héllo ✓"},
            {"isNull": True},
            {"stringValue": "2024-02-29"},
            {"stringValue": "13:14:15.25"},
            {"stringValue": "2024-02-29 13:14:15.123"},
            {"stringValue": "123456789.125"},
            {"stringValue": '{"a": [1, 2]}'},
            {"stringValue": uid},
        ]
    ]


def test_whole_seconds_have_no_fraction(data_api):
    row = data_api.run(
        "SELECT CAST(:ts AS DATETIME(6)) AS ts, CAST(:t AS TIME(3)) AS t",
        p("ts", "TIMESTAMP", stringValue="2024-01-02 03:04:05"),
        p("t", "TIME", stringValue="01:02:03"),
    )
    assert values(row) == [["2024-01-02 03:04:05", "01:02:03"]]


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        ("DATE", "2024-13-01"),
        ("DATE", "01/02/2024"),
        ("TIME", "25:00"),
        ("TIMESTAMP", "2026-07-22T02:17:21.804Z"),  # ISO 8601 is not the documented format
        ("DECIMAL", "12,5"),
        ("UUID", "not-a-uuid"),
    ],
)
def test_bad_type_hint_values_are_refused(data_api, hint, text):
    code, status, _ = error(lambda: data_api.run("SELECT :v", p("v", hint, stringValue=text)))
    assert (code, status) == ("BadRequestException", 400)


def test_column_metadata_comes_with_include_result_metadata(data_api):
    table = data_api.table(
        "id INT AUTO_INCREMENT PRIMARY KEY, price DECIMAL(10,2) NOT NULL,"
        " name VARCHAR(20), flag BOOLEAN, born DATETIME, raw VARBINARY(8)"
    )
    data_api.run(f"INSERT INTO {table} (price, name) VALUES (1.5, 'x')")
    response = data_api.run(
        f"SELECT id, price, name AS label, flag, born, raw FROM {table}",
        includeResultMetadata=True,
    )
    meta = {m["label"]: m for m in response["columnMetadata"]}
    assert list(meta) == ["id", "price", "label", "flag", "born", "raw"]
    assert meta["id"]["type"] == 4 and meta["id"]["typeName"] == "INT"
    assert meta["id"]["isAutoIncrement"] is True and meta["id"]["nullable"] == 0
    assert meta["id"]["isSigned"] is True and meta["id"]["tableName"] == table
    assert (meta["price"]["type"], meta["price"]["typeName"]) == (3, "DECIMAL")
    assert (meta["price"]["precision"], meta["price"]["scale"]) == (10, 2)
    assert meta["label"]["name"] == "name" and meta["label"]["typeName"] == "VARCHAR"
    assert meta["label"]["type"] == 12 and meta["label"]["precision"] == 20
    assert meta["label"]["nullable"] == 1 and meta["label"]["isSigned"] is False
    assert (meta["flag"]["type"], meta["flag"]["typeName"]) == (-7, "BIT")
    assert (meta["born"]["type"], meta["born"]["typeName"]) == (93, "DATETIME")
    assert (meta["raw"]["type"], meta["raw"]["typeName"]) == (-3, "VARBINARY")
    assert all(m["arrayBaseColumnType"] == 0 and m["isCurrency"] is False for m in meta.values())
    assert response["records"][0][1] == {"stringValue": "1.50"}


def test_formatted_records_are_json(data_api):
    table = data_api.table("id INT, price DECIMAL(6,2), ok BOOLEAN, bin BLOB, note TEXT")
    data_api.run(f"INSERT INTO {table} VALUES (7, 2.50, 1, 'hi', NULL), (8, 0.10, 0, NULL, 'é')")
    response = data_api.run(
        f"SELECT id, price, ok, bin, note, 1.5e0 AS f FROM {table} ORDER BY id",
        formatRecordsAs="JSON",
        includeResultMetadata=True,
    )
    assert "records" not in response and "columnMetadata" not in response
    assert json.loads(response["formattedRecords"]) == [
        {"id": 7, "price": "2.50", "ok": True, "bin": "aGk=", "note": None, "f": 1.5},
        {"id": 8, "price": "0.10", "ok": False, "bin": None, "note": "é", "f": 1.5},
    ]
    as_numbers = data_api.run(
        f"SELECT id, price FROM {table} ORDER BY id",
        formatRecordsAs="JSON",
        resultSetOptions={"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"},
    )
    assert json.loads(as_numbers["formattedRecords"]) == [
        {"id": "7", "price": 2.5},
        {"id": "8", "price": 0.1},
    ]
    code, status, _ = error(lambda: data_api.run("SELECT 1 AS a, 2 AS a", formatRecordsAs="JSON"))
    assert (code, status) == ("BadRequestException", 400)
    update = data_api.run(f"UPDATE {table} SET ok = 1", formatRecordsAs="JSON")
    assert update["numberOfRecordsUpdated"] == 2 and "formattedRecords" not in update


def test_result_set_options_change_longs_and_decimals(data_api):
    sql = "SELECT CAST(9007199254740993 AS SIGNED) AS big, 12.50 AS money, CAST(7 AS DECIMAL) AS n"
    assert data_api.run(sql)["records"] == [
        [{"longValue": 9007199254740993}, {"stringValue": "12.50"}, {"stringValue": "7"}]
    ]
    options = {"longReturnType": "STRING", "decimalReturnType": "DOUBLE_OR_LONG"}
    assert data_api.run(sql, resultSetOptions=options)["records"] == [
        [{"stringValue": "9007199254740993"}, {"doubleValue": 12.5}, {"longValue": 7}]
    ]


def test_generated_fields_and_updated_counts(data_api):
    table = data_api.table("id INT AUTO_INCREMENT PRIMARY KEY, n INT")
    for expected in (1, 2, 3):
        inserted = data_api.run(f"INSERT INTO {table} (n) VALUES (0)")
        assert inserted["generatedFields"] == [{"longValue": expected}]
    updated = data_api.run(f"UPDATE {table} SET n = 0 WHERE id >= 2")
    assert updated["numberOfRecordsUpdated"] == 2  # rows matched, as the Data API counts
    assert updated["generatedFields"] == []
    assert data_api.run(f"DELETE FROM {table} WHERE id = 1")["numberOfRecordsUpdated"] == 1


def test_batch_execute_statement_runs_each_parameter_set(data_api):
    table = data_api.table("id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(10), n INT")
    result = data_api.client.batch_execute_statement(
        resourceArn=data_api.cluster_arn,
        secretArn=data_api.secret_arn,
        database=data_api.database,
        sql=f"INSERT INTO {table} (name, n) VALUES (:name, :n)",
        parameterSets=[
            [p("name", stringValue="a"), p("n", longValue=1)],
            [p("name", stringValue="b"), p("n", isNull=True)],
        ],
    )
    assert result["updateResults"] == [
        {"generatedFields": [{"longValue": 1}]},
        {"generatedFields": [{"longValue": 2}]},
    ]
    assert data_api.run(f"SELECT name, n FROM {table} ORDER BY id")["records"] == [
        [{"stringValue": "a"}, {"longValue": 1}],
        [{"stringValue": "b"}, {"isNull": True}],
    ]


# ----- transactions ------------------------------------------------------------------------


def test_commit_makes_the_transaction_visible(data_api):
    table = data_api.table("n INT")
    transaction = data_api.begin()
    assert 100 <= len(transaction) <= 192
    data_api.run(f"INSERT INTO {table} VALUES (1)", transactionId=transaction)
    data_api.run(f"INSERT INTO {table} VALUES (2)", transactionId=transaction)
    inside = data_api.run(f"SELECT COUNT(*) FROM {table}", transactionId=transaction)
    assert values(inside) == [[2]]
    assert values(data_api.run(f"SELECT COUNT(*) FROM {table}")) == [[0]]
    assert data_api.end(transaction)["transactionStatus"] == "Transaction Committed"
    assert values(data_api.run(f"SELECT COUNT(*) FROM {table}")) == [[2]]
    code, status, message = error(lambda: data_api.end(transaction))
    assert (code, status) == ("TransactionNotFoundException", 404)
    assert message == f"Transaction {transaction} isn't found"


def test_rollback_discards_the_transaction(data_api):
    table = data_api.table("n INT")
    transaction = data_api.begin()
    data_api.client.batch_execute_statement(
        resourceArn=data_api.cluster_arn,
        secretArn=data_api.secret_arn,
        sql=f"INSERT INTO {table} VALUES (:n)",
        parameterSets=[[p("n", longValue=i)] for i in range(3)],
        transactionId=transaction,
    )
    assert data_api.end(transaction, commit=False)["transactionStatus"] == "Rollback Complete"
    assert values(data_api.run(f"SELECT COUNT(*) FROM {table}")) == [[0]]
    code, status, _ = error(lambda: data_api.run("SELECT 1", transactionId=transaction))
    assert (code, status) == ("TransactionNotFoundException", 404)


def test_an_idle_transaction_expires_and_is_rolled_back(data_api):
    table = data_api.table("n INT")
    transaction = data_api.begin()
    data_api.run(f"INSERT INTO {table} VALUES (1)", transactionId=transaction)
    time.sleep(data_api.idle_seconds / 2)
    data_api.run("SELECT 1", transactionId=transaction)  # each call restarts the idle clock
    time.sleep(data_api.idle_seconds + 1.5)
    code, status, message = error(lambda: data_api.run("SELECT 1", transactionId=transaction))
    assert (code, status) == ("TransactionNotFoundException", 404)
    assert transaction in message
    assert values(data_api.run(f"SELECT COUNT(*) FROM {table}")) == [[0]]


def test_unknown_transaction_is_not_found(data_api):
    bogus = base64.b64encode(b"x" * 60).decode()
    code, status, message = error(lambda: data_api.end(bogus))
    assert (code, status, message) == (
        "TransactionNotFoundException",
        404,
        f"Transaction {bogus} isn't found",
    )


def test_a_second_call_while_the_transaction_is_busy_is_refused(data_api):
    transaction = data_api.begin()
    slow = threading.Thread(
        target=data_api.run, args=("SELECT SLEEP(1)",), kwargs={"transactionId": transaction}
    )
    slow.start()
    time.sleep(0.3)
    try:
        code, status, message = error(lambda: data_api.run("SELECT 1", transactionId=transaction))
    finally:
        slow.join()
    assert (code, status, message) == (
        "DatabaseErrorException",
        400,
        "Transaction is still running a query",
    )
    data_api.end(transaction, commit=False)


# ----- limits and errors -------------------------------------------------------------------


def test_a_response_over_one_mib_is_refused(data_api):
    table = data_api.table("id INT, body LONGTEXT")
    for i in range(3):
        data_api.run(f"INSERT INTO {table} VALUES ({i}, REPEAT('x', 400000))")
    code, status, message = error(lambda: data_api.run(f"SELECT body FROM {table}"))
    assert (code, status, message) == ("BadRequestException", 400, SIZE_ERROR)
    assert len(values(data_api.run(f"SELECT body FROM {table} LIMIT 2"))) == 2
    transaction = data_api.begin()  # AWS ends a transaction whose result was too large
    error(lambda: data_api.run(f"SELECT body FROM {table}", transactionId=transaction))
    code, status, _ = error(lambda: data_api.run("SELECT 1", transactionId=transaction))
    assert (code, status) == ("TransactionNotFoundException", 404)


def test_sql_errors_are_database_errors(data_api):
    code, status, message = error(lambda: data_api.run("SELECT * FROM no_such_table"))
    assert (code, status) == ("DatabaseErrorException", 400)
    assert "doesn't exist" in message and "Error code: 1146" in message
    assert message.endswith("SQLState: 42S02")
    code, status, message = error(lambda: data_api.run("SELEC 1"))
    assert (code, status) == ("DatabaseErrorException", 400) and "Error code: 1064" in message


def test_http_endpoint_must_be_enabled(data_api):
    call = data_api.client.execute_statement
    code, status, message = error(
        lambda: call(resourceArn=data_api.no_endpoint_arn, secretArn=data_api.secret_arn, sql="1")
    )
    assert (code, status) == ("HttpEndpointNotEnabledException", 400)
    assert message.startswith("HttpEndpoint is not enabled for cluster ")
    unknown = data_api.cluster_arn.rsplit(":", 1)[0] + ":no-such-cluster"
    code, status, message = error(
        lambda: call(resourceArn=unknown, secretArn=data_api.secret_arn, sql="SELECT 1")
    )
    assert (code, status) == ("HttpEndpointNotEnabledException", 400)
    assert "no-such-cluster" in message


def test_a_secret_that_does_not_exist_is_refused(data_api):
    missing = data_api.secret_arn.rsplit(":", 1)[0] + ":no-such-secret-AbCdEf"
    code, status, _ = error(
        lambda: data_api.client.execute_statement(
            resourceArn=data_api.cluster_arn, secretArn=missing, sql="SELECT 1"
        )
    )
    assert (code, status) == ("SecretsErrorException", 400)


@pytest.mark.parametrize("value", [{"username": "admin"}, "not json", {"password": "x"}])
def test_a_secret_without_credentials_is_invalid(data_api, value):
    arn = data_api.secret(value)
    code, status, _ = error(
        lambda: data_api.client.execute_statement(
            resourceArn=data_api.cluster_arn, secretArn=arn, sql="SELECT 1"
        )
    )
    assert (code, status) == ("InvalidSecretException", 400)


def test_a_wrong_password_in_the_secret_is_refused_by_the_database(data_api):
    arn = data_api.secret({"username": data_api.username, "password": "wrong-password"})
    code, status, message = error(
        lambda: data_api.client.execute_statement(
            resourceArn=data_api.cluster_arn, secretArn=arn, sql="SELECT 1"
        )
    )
    assert (code, status) == ("DatabaseErrorException", 400)
    assert "Access denied for user" in message and "Error code: 1045" in message
    code, _, _ = error(
        lambda: data_api.client.begin_transaction(resourceArn=data_api.cluster_arn, secretArn=arn)
    )
    assert code == "DatabaseErrorException"


def test_parameters_the_data_api_refuses(data_api):
    array = p("ids", arrayValue={"longValues": [1, 2]})
    assert error(lambda: data_api.run("SELECT :ids", array)) == (
        "BadRequestException",
        400,
        "Array parameters are not supported.",
    )
    code, status, message = error(lambda: data_api.run("SELECT :a, :b", p("a", longValue=1)))
    assert (code, status) == ("BadRequestException", 400) and ":b" in message


def test_requests_the_data_api_refuses(data_api):
    code, status, message = error(lambda: data_api.run("SELECT 1; SELECT 2"))
    assert (code, status, message) == (
        "ValidationException",
        400,
        "Multistatements aren't supported.",
    )
    assert values(data_api.run("SELECT 1; -- a trailing comment")) == [[1]]
    long_sql = "SELECT 1 /*" + "x" * 65536 + "*/"
    code, status, _ = error(lambda: data_api.run(long_sql))
    assert (code, status) == ("ValidationException", 400)
    code, _, _ = error(lambda: data_api.run("SELECT 1", schema="other"))
    assert code == "ValidationException"


def test_an_unknown_database_is_a_database_error(data_api):
    code, status, message = error(
        lambda: data_api.client.execute_statement(
            resourceArn=data_api.cluster_arn,
            secretArn=data_api.secret_arn,
            database="no_such_db",
            sql="SELECT 1",
        )
    )
    assert (code, status) == ("DatabaseErrorException", 400) and "Error code: 1049" in message


def test_sql_injection_in_a_parameter_is_stored_as_data(data_api):
    table = data_api.table("id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200)")
    attacks = [
        f"x'); DROP TABLE {table}; --",
        "' OR '1'='1",
        "\\'; DELETE FROM users; #",
        "100% :name %(name)s %s",
    ]
    for attack in attacks:
        data_api.run(f"INSERT INTO {table} (name) VALUES (:name)", p("name", stringValue=attack))
    stored = data_api.run(f"SELECT name FROM {table} ORDER BY id")
    assert values(stored) == [[a] for a in attacks]
    found = data_api.run(
        f"SELECT COUNT(*) FROM {table} WHERE name = :n", p("n", stringValue="' OR '1'='1")
    )
    assert values(found) == [[1]]


def test_placeholders_in_literals_and_comments_are_left_alone(data_api):
    response = data_api.run(
        "SELECT ':skip' AS a, \"it''s :also\" AS b, 'o\\':x' AS c, :real AS `:d`, '50%' AS e"
        " -- :comment\n /* :block */ # :hash",
        p("real", stringValue="ok"),
        includeResultMetadata=True,
    )
    assert values(response) == [[":skip", "it''s :also", "o':x", "ok", "50%"]]
    assert response["columnMetadata"][3]["label"] == ":d"
