"""Pattern 24's handler code: the executor's allow list, and the API functions' answers.

The modules are loaded from code/24_rest_api_postgres/ as the Lambda runtime loads them.
No database and no cloud: the executor's connection and the API functions' `execute` are
replaced, so each test shows what is refused (or answered) before anything runs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CODE = Path(__file__).resolve().parents[2] / "code" / "24_rest_api_postgres"


def load(part: str, monkeypatch: pytest.MonkeyPatch, **environment: str) -> ModuleType:
    """Import one function's app.py afresh, with its environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    name = f"pattern24_{part.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, CODE / part / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The executor with the CRUD allow list; any attempt to connect fails the test."""
    module = load("executor", monkeypatch)

    def no_database() -> None:
        raise AssertionError("a refused call must not reach the database")

    monkeypatch.setattr(module, "connection", no_database)
    return module


def refusal(executor: ModuleType, event: Any) -> str:
    """The executor's answer to an event it must refuse: the message."""
    answer = executor.handler(event, None)
    assert answer["error"]["code"] == "Refused", answer
    return answer["error"]["message"]


def test_unknown_statements_and_raw_sql_are_refused(executor: ModuleType) -> None:
    assert "unknown statement" in refusal(executor, {"statement": "drop_everything"})
    assert "unknown statement" in refusal(
        executor, {"statement": "SELECT * FROM demo.customers", "params": {}}
    )
    # The migrations live in another allow list, which this function does not serve.
    assert "unknown statement" in refusal(executor, {"statement": "migrate", "params": {}})
    assert "nothing else" in refusal(executor, {"statement": "list_orders", "sql": "DELETE"})
    assert "nothing else" in refusal(executor, ["get_customer"])


def test_missing_and_extra_parameters_are_refused(executor: ModuleType) -> None:
    extra = refusal(
        executor,
        {"statement": "get_customer", "params": {"customer_id": "C1", "where": "1=1"}},
    )
    assert "unexpected parameters ['where']" in extra
    missing = refusal(executor, {"statement": "get_customer", "params": {}})
    assert "missing parameters ['customer_id']" in missing
    assert "params must be an object" in refusal(
        executor, {"statement": "get_customer", "params": ["C1"]}
    )


@pytest.mark.parametrize(
    ("statement", "params", "wrong"),
    [
        ("list_customers", {"limit": "100; DELETE FROM demo.orders"}, "limit"),
        ("list_customers", {"limit": 10.5}, "limit"),
        ("list_customers", {"limit": True}, "limit"),  # a bool is not a count
        ("get_customer", {"customer_id": 7}, "customer_id"),
        ("get_customer", {"customer_id": None}, "customer_id"),
        (
            "create_order",
            {"order_id": "O1", "customer_id": "C1", "status": "paid", "total_amount": "12.50"},
            "total_amount",
        ),  # fmt: skip
        (
            "update_order",
            {"order_id": "O1", "status": None, "total_amount": False},
            "total_amount",
        ),  # fmt: skip
    ],
)
def test_mistyped_parameters_are_refused(
    executor: ModuleType, statement: str, params: dict[str, Any], wrong: str
) -> None:
    message = refusal(executor, {"statement": statement, "params": params})
    assert f"parameter {wrong} must be" in message


def test_a_valid_call_runs_its_own_sql_with_the_values_as_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load("executor", monkeypatch)
    executed: list[tuple[str, Any]] = []

    class Cursor:
        description = [("customer_id",)]

        def __enter__(self) -> Cursor:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, sql: str, params: Any) -> None:
            executed.append((sql, params))

        def fetchall(self) -> list[dict[str, Any]]:
            return [{"customer_id": "C1"}]

    class Connection:
        def cursor(self) -> Cursor:
            return Cursor()

    monkeypatch.setattr(module, "connection", Connection)
    evil = "x'); DROP TABLE demo.customers; --"
    answer = module.handler({"statement": "get_customer", "params": {"customer_id": evil}}, None)
    assert answer == {"rows": [{"customer_id": "C1"}]}
    [(sql, params)] = executed
    assert sql == module.CRUD["get_customer"].sql and evil not in sql
    assert params == {"customer_id": evil}


@pytest.mark.parametrize("statement_set", ["crud", "migrations"])
def test_every_statements_placeholders_are_exactly_its_declared_parameters(
    monkeypatch: pytest.MonkeyPatch, statement_set: str
) -> None:
    module = load("executor", monkeypatch, STATEMENT_SET=statement_set)
    assert module.STATEMENTS
    for name, statement in module.STATEMENTS.items():
        placeholders = set(re.findall(r"%\((\w+)\)s", statement.sql))
        assert placeholders == set(statement.params), name


# --- the API functions ----------------------------------------------------------------------


class FakeExecutor:
    """Stands in for the executor: records calls, answers from a script."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, statement: str, **params: Any) -> dict[str, Any]:
        self.calls.append((statement, params))
        return self.answers.get(statement, {"rows": []})


def api(part: str, monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> tuple[Any, Any]:
    module = load(part, monkeypatch, QUERY_EXECUTOR_FUNCTION="executor")
    fake = FakeExecutor(answers)
    monkeypatch.setattr(module, "execute", fake)
    return module, fake


def request(
    method: str,
    resource: str,
    body: Any = None,
    path: dict | None = None,
    query: dict | None = None,
) -> dict[str, Any]:
    """A payload format 1.0 event with the fields the functions read."""
    return {
        "httpMethod": method,
        "resource": resource,
        "pathParameters": path,
        "queryStringParameters": query,
        "body": None if body is None else json.dumps(body),
    }


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


CUSTOMER = {"customer_id": "CUST001", "customer_name": "John Doe", "email": "john@example.com"}


def test_customers_validation_names_the_field_and_runs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, fake = api("customers-api", monkeypatch, {})
    cases = [
        ({**CUSTOMER, "email": "john"}, "email"),
        ({k: v for k, v in CUSTOMER.items() if k != "customer_name"}, "customer_name"),
        ({**CUSTOMER, "customer_id": "no spaces!"}, "customer_id"),
        ({**CUSTOMER, "admin": True}, "admin"),
        ({**CUSTOMER, "city": "x" * 101}, "city"),
        ("[1, 2]", "body"),
    ]
    for body, field in cases:
        status, payload = answer(module.handler(request("POST", "/customers", body), None))
        assert status == 400 and payload["error"]["field"] == field, (body, payload)
    assert fake.calls == []


def test_customers_map_database_outcomes_to_404_and_409(monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = api(
        "customers-api",
        monkeypatch,
        {
            "create_customer": {"error": {"code": "UniqueViolation", "message": "dup"}},
            "delete_customer": {"error": {"code": "ForeignKeyViolation", "message": "fk"}},
            "get_customer": {"rows": []},
        },
    )
    status, _ = answer(module.handler(request("POST", "/customers", CUSTOMER), None))
    assert status == 409
    one = {"customer_id": "CUST001"}
    status, body = answer(
        module.handler(request("DELETE", "/customers/{customer_id}", path=one), None)
    )
    assert status == 409 and "has orders" in body["error"]["message"]
    status, _ = answer(module.handler(request("GET", "/customers", query=one), None))
    assert status == 404


def test_a_partial_update_sends_none_for_the_fields_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = {**CUSTOMER, "customer_name": "John Doe Updated", "city": "Boston", "state": "NY"}
    module, fake = api("customers-api", monkeypatch, {"update_customer": {"rows": [row]}})
    event = request(
        "PUT", "/customers/{customer_id}", {"customer_name": "John Doe Updated", "city": "Boston"},
        path={"customer_id": "CUST001"},
    )  # fmt: skip
    status, body = answer(module.handler(event, None))
    assert status == 200 and body["customer"]["city"] == "Boston"
    assert fake.calls == [
        ("update_customer", {"customer_id": "CUST001", "customer_name": "John Doe Updated",
                             "email": None, "city": "Boston", "state": None}),
    ]  # fmt: skip


def test_orders_check_amounts_and_statuses_and_unknown_customers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, fake = api(
        "orders-api",
        monkeypatch,
        {"create_order": {"error": {"code": "ForeignKeyViolation", "message": "fk"}}},
    )
    order = {"order_id": "ORD001", "customer_id": "CUST001", "total_amount": 150.75}
    for body, field in [
        ({**order, "total_amount": -1}, "total_amount"),
        ({**order, "total_amount": 1.005}, "total_amount"),
        ({**order, "total_amount": "150.75"}, "total_amount"),
        ({**order, "total_amount": True}, "total_amount"),
        ({**order, "status": "lost"}, "status"),
    ]:
        status, payload = answer(module.handler(request("POST", "/orders", body), None))
        assert status == 400 and payload["error"]["field"] == field, body
    assert fake.calls == []
    status, payload = answer(module.handler(request("POST", "/orders", order), None))
    assert status == 400 and payload["error"]["field"] == "customer_id"
    assert fake.calls == [
        ("create_order", {"order_id": "ORD001", "customer_id": "CUST001", "status": "pending",
                          "total_amount": 150.75}),
    ]  # fmt: skip
