"""The Data API provider's pure parts: placeholder scanning, Field values, result mapping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from polling import wait_until
from pymysql.constants import FIELD_TYPE as T
from pymysql.constants import FLAG

from localcloud.protocols import ServiceError
from localcloud.rds_data import results, sql, transactions
from localcloud.rds_data.results import Column, ResultOptions

UTF8MB4, BINARY = 45, 63


def code_of(call: Any) -> tuple[str, int, str]:
    """The ServiceError code, status and message a call raises."""
    with pytest.raises(ServiceError) as caught:
        call()
    return caught.value.code, caught.value.status, caught.value.message


# ----- placeholder scanning ----------------------------------------------------------------


def test_placeholders_become_pyformat_in_order():
    found = sql.scan("SELECT * FROM t WHERE a = :a AND b = :b_2 OR a = :a")
    assert found.text == "SELECT * FROM t WHERE a = %(a)s AND b = %(b_2)s OR a = %(a)s"
    assert found.names == ["a", "b_2", "a"]
    assert not found.multiple_statements


@pytest.mark.parametrize(
    "text",
    [
        "SELECT ':a'",
        "SELECT 'it''s :a'",
        "SELECT 'it\\'s :a'",
        'SELECT "x :a"',
        'SELECT "x "" :a"',
        "SELECT `:a` FROM t",
        "SELECT `x``:a`",
        "SELECT 1 -- :a",
        "SELECT 1 # :a",
        "SELECT 1 /* :a */",
        "SELECT 1 /* :a",
        "SELECT 'unterminated :a",
    ],
)
def test_placeholders_in_literals_identifiers_and_comments_are_text(text):
    found = sql.scan(text)
    assert found.names == []
    assert found.text == text


def test_double_colons_and_assignments_are_not_placeholders():
    found = sql.scan("SELECT @x := 1, a::int, :real")
    assert found.names == ["real"]
    assert found.text == "SELECT @x := 1, a::int, %(real)s"


def test_a_dash_dash_needs_a_space_to_be_a_comment():
    found = sql.scan("SELECT 1--:a")
    assert found.names == ["a"] and found.text == "SELECT 1--%(a)s"
    assert sql.scan("SELECT 1 --\t:a").names == []


def test_percent_signs_are_doubled_everywhere():
    found = sql.scan("SELECT '50%' LIKE :p, 10 % 3 /* 5% */ -- 1%")
    assert found.text == "SELECT '50%%' LIKE %(p)s, 10 %% 3 /* 5%% */ -- 1%%"
    assert found.text % {"p": "'x'"} == "SELECT '50%' LIKE 'x', 10 % 3 /* 5% */ -- 1%"


@pytest.mark.parametrize(
    ("text", "multiple"),
    [
        ("SELECT 1; SELECT 2", True),
        ("SELECT 1;", False),
        ("SELECT 1;  \n ", False),
        ("SELECT 1; -- done", False),
        ("SELECT 1; /* done */", False),
        ("SELECT ';'", False),
        ("SELECT 1; 'x'", True),
        ("SELECT 1; :a", True),
        ("SELECT 1;;", False),
    ],
)
def test_several_statements_are_detected(text, multiple):
    assert sql.scan(text).multiple_statements is multiple


def test_prepare_refuses_what_the_data_api_refuses():
    assert code_of(lambda: sql.prepare("SELECT 1; SELECT 2")) == (
        "ValidationException",
        400,
        "Multistatements aren't supported.",
    )
    code, status, message = code_of(lambda: sql.prepare("x" * 65537))
    assert (code, status) == ("ValidationException", 400) and "65536" in message
    assert sql.prepare("x" * 65536).text == "x" * 65536


def test_bind_requires_every_named_parameter():
    code, status, message = code_of(lambda: sql.bind("SELECT :a, :b", [_p("a", longValue=1)]))
    assert (code, status) == ("BadRequestException", 400)
    assert "parameter 2" in message and ":b" in message
    query, args = sql.bind("SELECT :a", [_p("a", longValue=1), _p("unused", longValue=2)])
    assert query == "SELECT %(a)s" and args == {"a": 1}


def test_bound_values_never_enter_the_sql_text():
    attack = "x'); DROP TABLE t; -- %(a)s :a"
    query, args = sql.bind("INSERT INTO t VALUES (:a)", [_p("a", stringValue=attack)])
    assert query == "INSERT INTO t VALUES (%(a)s)"
    assert args == {"a": attack}


# ----- Field to Python ---------------------------------------------------------------------


def _p(name: str, type_hint: str | None = None, **value: Any) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "value": value}
    if type_hint:
        parameter["typeHint"] = type_hint
    return parameter


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"stringValue": "x"}, "x"),
        ({"longValue": -5}, -5),
        ({"doubleValue": 2.5}, 2.5),
        ({"booleanValue": False}, False),
        ({"blobValue": b"\x00\xff"}, b"\x00\xff"),
        ({"isNull": True}, None),
        ({"stringValue": ""}, ""),
    ],
)
def test_fields_become_python_values(value, expected):
    converted = sql.to_python("p", value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("hint", "text", "expected"),
    [
        ("DATE", "2024-02-29", dt.date(2024, 2, 29)),
        ("TIME", "23:59:58", dt.time(23, 59, 58)),
        ("TIME", "01:02:03.5", dt.time(1, 2, 3, 500000)),
        ("TIMESTAMP", "2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("TIMESTAMP", "2024-01-02 03:04:05.123", dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),
        ("TIMESTAMP", "2024-01-02 03:04:05.123456789", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
        ("DECIMAL", "12.50", Decimal("12.50")),
        ("DECIMAL", "-1E+3", Decimal("-1E+3")),
        ("JSON", '{"a": 1}', '{"a": 1}'),
        ("UUID", "123E4567-E89B-12D3-A456-4266141740AB", "123e4567-e89b-12d3-a456-4266141740ab"),
    ],
)
def test_type_hints_convert_strings(hint, text, expected):
    assert sql.to_python("p", {"stringValue": text}, hint) == expected


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        ("DATE", "2024-02-30"),
        ("DATE", "2024-2-3"),
        ("DATE", "2024-02-03 00:00:00"),
        ("TIME", "24:00:00"),
        ("TIME", "1:02:03"),
        ("TIME", "01:02"),
        ("TIMESTAMP", "2024-01-02T03:04:05"),
        ("TIMESTAMP", "2026-07-22T02:17:21.804Z"),
        ("TIMESTAMP", "2024-01-02 03:04:05+01:00"),
        ("TIMESTAMP", "2024-01-02"),
        ("DECIMAL", "abc"),
        ("DECIMAL", "NaN"),
        ("DECIMAL", "Infinity"),
        ("UUID", "123e4567e89b12d3a4564266141740ab"),
        ("UUID", "zzzzzzzz-e89b-12d3-a456-4266141740ab"),
    ],
)
def test_bad_type_hint_values_are_bad_requests(hint, text):
    code, status, _ = code_of(lambda: sql.to_python("p", {"stringValue": text}, hint))
    assert (code, status) == ("BadRequestException", 400)


def test_date_and_time_errors_quote_the_value():
    assert code_of(lambda: sql.hinted("2024-13-01", "DATE"))[2] == (
        'Cannot parse date or time "2024-13-01"'
    )


def test_an_unknown_type_hint_fails_validation():
    assert code_of(lambda: sql.hinted("x", "INTERVAL"))[0] == "ValidationException"


def test_type_hints_apply_to_strings_only():
    assert sql.to_python("p", {"longValue": 5}, "DECIMAL") == 5


def test_arrays_and_empty_fields_are_refused():
    array = {"arrayValue": {"longValues": [1, 2]}}
    assert code_of(lambda: sql.to_python("ids", array)) == (
        "BadRequestException",
        400,
        "Array parameters are not supported.",
    )
    assert code_of(lambda: sql.to_python("x", {})) == (
        "BadRequestException",
        400,
        'Parameter "x" has value with no field set',
    )


# ----- result mapping ----------------------------------------------------------------------


def col(type_code: int, length: int = 11, flags: int = 0, scale: int = 0, cs: int = BINARY):
    """A column as the protocol describes it."""
    return Column("c", "c", "t", type_code, length, flags, scale, cs)


@pytest.mark.parametrize(
    ("column", "kind", "jdbc"),
    [
        (col(T.TINY, 1), "boolean", (-7, "BIT")),
        (col(T.TINY, 4), "long", (-6, "TINYINT")),
        (col(T.TINY, 3, FLAG.UNSIGNED), "long", (-6, "TINYINT UNSIGNED")),
        (col(T.SHORT, 6), "long", (5, "SMALLINT")),
        (col(T.INT24, 9), "long", (4, "MEDIUMINT")),
        (col(T.LONG), "long", (4, "INT")),
        (col(T.LONG, 10, FLAG.UNSIGNED), "long", (-5, "INT UNSIGNED")),
        (col(T.LONGLONG, 20), "long", (-5, "BIGINT")),
        (col(T.FLOAT, 12), "double", (7, "FLOAT")),
        (col(T.DOUBLE, 22), "double", (8, "DOUBLE")),
        (col(T.NEWDECIMAL, 12, scale=2), "decimal", (3, "DECIMAL")),
        (col(T.BIT, 1), "boolean", (-7, "BIT")),
        (col(T.BIT, 8), "blob", (-7, "BIT")),
        (col(T.DATE, 10), "string", (91, "DATE")),
        (col(T.TIME, 10), "string", (92, "TIME")),
        (col(T.DATETIME, 19), "string", (93, "DATETIME")),
        (col(T.TIMESTAMP, 19), "string", (93, "TIMESTAMP")),
        (col(T.YEAR, 4), "string", (91, "YEAR")),
        (col(T.NULL, 0), "null", (0, "NULL")),
        (col(T.VAR_STRING, 80, cs=UTF8MB4), "string", (12, "VARCHAR")),
        (col(T.VAR_STRING, 10), "blob", (-3, "VARBINARY")),
        (col(T.STRING, 12, cs=UTF8MB4), "string", (1, "CHAR")),
        (col(T.STRING, 8), "blob", (-2, "BINARY")),
        (col(T.STRING, 4, FLAG.ENUM, cs=UTF8MB4), "string", (1, "ENUM")),
        (col(T.STRING, 12, FLAG.SET, cs=UTF8MB4), "string", (1, "SET")),
        (col(T.BLOB, 262140, FLAG.BLOB, cs=UTF8MB4), "string", (-1, "TEXT")),
        (col(T.BLOB, 1020, FLAG.BLOB, cs=UTF8MB4), "string", (-1, "TINYTEXT")),
        (col(T.BLOB, 4294967295, FLAG.BLOB, cs=UTF8MB4), "string", (-1, "LONGTEXT")),
        (col(T.BLOB, 65535, FLAG.BLOB), "blob", (-4, "BLOB")),
        (col(T.BLOB, 16777215, FLAG.BLOB), "blob", (-4, "MEDIUMBLOB")),
        (col(T.JSON, 4294967295, cs=UTF8MB4), "string", (-1, "JSON")),
        (col(T.GEOMETRY, 4294967295), "blob", (-2, "GEOMETRY")),
    ],
)
def test_column_kinds_and_jdbc_types(column, kind, jdbc):
    assert results.kind(column) == kind
    assert results.jdbc_type(column) == jdbc


DEFAULT = ResultOptions()
STRINGS = ResultOptions(long_as_string=True)
NUMBERS = ResultOptions(decimal_as_number=True)


@pytest.mark.parametrize(
    ("value", "column", "options", "expected"),
    [
        (None, col(T.LONG), DEFAULT, {"isNull": True}),
        (7, col(T.LONG), DEFAULT, {"longValue": 7}),
        (7, col(T.LONG), STRINGS, {"stringValue": "7"}),
        (2**64 - 1, col(T.LONGLONG, 20, FLAG.UNSIGNED), DEFAULT, {"stringValue": str(2**64 - 1)}),
        (1.5, col(T.DOUBLE), DEFAULT, {"doubleValue": 1.5}),
        (1, col(T.TINY, 1), DEFAULT, {"booleanValue": True}),
        (0, col(T.TINY, 1), DEFAULT, {"booleanValue": False}),
        (b"\x01", col(T.BIT, 1), DEFAULT, {"booleanValue": True}),
        (b"\x00", col(T.BIT, 1), DEFAULT, {"booleanValue": False}),
        (b"\x05", col(T.BIT, 8), DEFAULT, {"blobValue": b"\x05"}),
        (b"\x00a", col(T.BLOB, 65535), DEFAULT, {"blobValue": b"\x00a"}),
        ("12.50", col(T.NEWDECIMAL, 12, scale=2), DEFAULT, {"stringValue": "12.50"}),
        ("12.50", col(T.NEWDECIMAL, 12, scale=2), NUMBERS, {"doubleValue": 12.5}),
        ("-12", col(T.NEWDECIMAL, 11), NUMBERS, {"longValue": -12}),
        ("2024-01-02", col(T.DATE, 10), DEFAULT, {"stringValue": "2024-01-02"}),
        (
            "2024-01-02 03:04:05.120000",
            col(T.DATETIME, 26),
            DEFAULT,
            {"stringValue": "2024-01-02 03:04:05.12"},
        ),
        (
            "2024-01-02 03:04:05.000000",
            col(T.DATETIME, 26),
            DEFAULT,
            {"stringValue": "2024-01-02 03:04:05"},
        ),
        ("-838:59:59.000", col(T.TIME, 14), DEFAULT, {"stringValue": "-838:59:59"}),
        ("2024", col(T.YEAR, 4), DEFAULT, {"stringValue": "2024"}),
        ("héllo", col(T.VAR_STRING, 20, cs=UTF8MB4), DEFAULT, {"stringValue": "héllo"}),
    ],
)
def test_values_become_fields(value, column, options, expected):
    assert results.field(value, column, options) == expected


def test_json_values_follow_the_documented_mapping():
    columns = [
        Column("id", "id", "t", T.LONG, 11, 0, 0, BINARY),
        Column("price", "price", "t", T.NEWDECIMAL, 8, 0, 2, BINARY),
        Column("ok", "ok", "t", T.TINY, 1, 0, 0, BINARY),
        Column("bin", "bin", "t", T.BLOB, 65535, 0, 0, BINARY),
        Column("f", "f", "t", T.DOUBLE, 22, 0, 31, BINARY),
        Column("note", "note", "t", T.VAR_STRING, 80, 0, 0, UTF8MB4),
    ]
    rows = [(1, "2.50", 1, b"hi", 0.5, None), (2, "3.00", 0, None, 1e20, 'q"é')]
    text = results.formatted_records(rows, columns, DEFAULT)
    assert json.loads(text) == [
        {"id": 1, "price": "2.50", "ok": True, "bin": "aGk=", "f": 0.5, "note": None},
        {"id": 2, "price": "3.00", "ok": False, "bin": None, "f": 1e20, "note": 'q"é'},
    ]
    assert '{"id":1,"price"' in text and "\\u00e9" not in text  # compact, UTF-8 unescaped
    as_options = results.formatted_records(rows[:1], columns, ResultOptions(True, True))
    assert json.loads(as_options)[0]["id"] == "1" and json.loads(as_options)[0]["price"] == 2.5


def test_duplicate_labels_cannot_be_json():
    columns = [col(T.LONG), col(T.LONG)]
    code, status, _ = code_of(lambda: results.formatted_records([(1, 2)], columns, DEFAULT))
    assert (code, status) == ("BadRequestException", 400)


def test_column_metadata_in_connector_j_terms():
    auto_id = Column("id", "id", "t", T.LONG, 11, FLAG.NOT_NULL | FLAG.AUTO_INCREMENT, 0, BINARY)
    assert results.metadata(auto_id) == {
        "name": "id",
        "type": 4,
        "typeName": "INT",
        "label": "id",
        "schemaName": "",
        "tableName": "t",
        "isAutoIncrement": True,
        "isSigned": True,
        "isCurrency": False,
        "isCaseSensitive": False,
        "nullable": 0,
        "precision": 11,
        "scale": 0,
        "arrayBaseColumnType": 0,
    }
    price = results.metadata(Column("p", "price", "t", T.NEWDECIMAL, 12, 0, 2, BINARY))
    assert (price["precision"], price["scale"], price["name"], price["label"]) == (
        10,
        2,
        "price",
        "p",
    )
    text = results.metadata(Column("n", "n", "t", T.VAR_STRING, 80, 0, 0, UTF8MB4))
    assert (text["precision"], text["isCaseSensitive"], text["isSigned"]) == (20, False, False)
    assert results.metadata(col(T.BLOB, 65535))["isCaseSensitive"] is True
    assert results.metadata(col(T.LONG, 10, FLAG.UNSIGNED))["isSigned"] is False


def test_temporal_text_loses_trailing_fraction_zeros_only():
    assert results.temporal("10:00:00.500") == "10:00:00.5"
    assert results.temporal("10:00:00.000") == "10:00:00"
    assert results.temporal("2024-01-01 10:00:00") == "2024-01-01 10:00:00"
    assert results.temporal("2024-01-01 10:00:10.100100") == "2024-01-01 10:00:10.1001"


def test_sizes_count_value_bytes():
    assert results.row_size((None, 1, 1.5, "é", b"ab")) == 1 + 8 + 8 + 2 + 2
    assert results.MAX_RESPONSE_BYTES == 1024 * 1024


def test_result_options_come_from_the_request():
    assert ResultOptions.from_request(None) == ResultOptions(False, False)
    assert ResultOptions.from_request(
        {"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"}
    ) == ResultOptions(True, True)


# ----- transaction registry ----------------------------------------------------------------


class FakeConnection:
    """Records rollbacks."""

    def __init__(self) -> None:
        self.rolled_back = 0

    def rollback(self) -> None:
        self.rolled_back += 1


def _transaction(registry: transactions.TransactionRegistry, released: list) -> Any:
    transaction = transactions.Transaction(
        id=transactions.new_transaction_id(),
        cluster_arn="arn:c",
        connection=FakeConnection(),
        release=lambda c, broken: released.append((c, broken)),
    )
    registry.add(transaction)
    return transaction


def test_transaction_ids_look_like_aws_ones():
    ids = {transactions.new_transaction_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 184 and len(i) <= transactions.MAX_ID_LENGTH for i in ids)


def test_transactions_are_found_only_on_their_cluster():
    registry = transactions.TransactionRegistry(60)
    released: list = []
    transaction = _transaction(registry, released)
    with registry.use(transaction.id, "arn:c") as found:
        assert found is transaction
    assert code_of(lambda: registry.use(transaction.id, "arn:other").__enter__())[:2] == (
        "TransactionNotFoundException",
        404,
    )
    registry.close_all()
    assert transaction.connection.rolled_back == 1 and released == [(transaction.connection, False)]


def test_a_busy_transaction_refuses_a_second_call():
    registry = transactions.TransactionRegistry(60)
    transaction = _transaction(registry, [])
    with registry.use(transaction.id, "arn:c"):
        code, status, message = code_of(lambda: registry.use(transaction.id, "arn:c").__enter__())
    assert (code, status, message) == (
        "DatabaseErrorException",
        400,
        "Transaction is still running a query",
    )
    registry.close_all()


def test_idle_transactions_are_swept_and_rolled_back():
    registry = transactions.TransactionRegistry(0.2)
    released: list = []
    transaction = _transaction(registry, released)
    wait_until(
        lambda: registry.count() == 0, what="the sweeper to end it", timeout=5, interval=0.05
    )
    assert transaction.connection.rolled_back == 1 and len(released) == 1
    code, status, message = code_of(lambda: registry.use(transaction.id, "arn:c").__enter__())
    assert (code, status, message) == (
        "TransactionNotFoundException",
        404,
        f"Transaction {transaction.id} isn't found",
    )
    registry.close_all()


def test_an_idle_transaction_is_expired_when_it_is_next_used():
    registry = transactions.TransactionRegistry(60)
    released: list = []
    transaction = _transaction(registry, released)
    transaction.last_used -= 61  # as if the sweeper had not run yet
    code, _, _ = code_of(lambda: registry.use(transaction.id, "arn:c").__enter__())
    assert code == "TransactionNotFoundException"
    assert transaction.connection.rolled_back == 1 and registry.count() == 0
    registry.close_all()
