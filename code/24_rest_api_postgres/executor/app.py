"""Pattern 24: the query executor, the only function that talks to PostgreSQL.

It runs named statements from an allow list, never SQL it is sent. An event names one
statement and its parameters: {"statement": "get_customer", "params": {"customer_id": "C1"}}.
Each statement declares its parameters and their types; a call with an unknown name, or a
missing, extra or mistyped parameter, is refused before any SQL runs. Values reach the
database as query parameters (psycopg's %(name)s placeholders), never as SQL text.

The database password stays in the secret RDS manages: the function reads it once per
execution environment and keeps it in memory, never in an environment variable. The
connection is TLS with the server's certificate and host name verified (sslmode=verify-full)
against the CA bundle that the image carries.

STATEMENT_SET picks the allow list one function serves: "crud" for the API's functions,
"migrations" for the notebook's migration function (the schema; no API function may run it).
"""

import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import boto3
import psycopg
from psycopg.rows import dict_row

TEXT = (str,)
OPTIONAL_TEXT = (str, type(None))  # None: "leave the column as it is" in updates
NUMBER = (int, float)  # JSON numbers; bool is refused even though Python calls it an int
OPTIONAL_NUMBER = (int, float, type(None))
COUNT = (int,)


@dataclass(frozen=True)
class Statement:
    """One allowed statement: its SQL and the type of each of its parameters."""

    sql: str
    params: dict


CUSTOMER_COLUMNS = "customer_id, customer_name, email, city, state, created_at, updated_at"
ORDER_COLUMNS = "order_id, customer_id, status, total_amount, created_at, updated_at"

CRUD = {
    "create_customer": Statement(
        "INSERT INTO demo.customers (customer_id, customer_name, email, city, state) "
        "VALUES (%(customer_id)s, %(customer_name)s, %(email)s, %(city)s, %(state)s) "
        f"RETURNING {CUSTOMER_COLUMNS}",
        {
            "customer_id": TEXT,
            "customer_name": TEXT,
            "email": TEXT,
            "city": OPTIONAL_TEXT,
            "state": OPTIONAL_TEXT,
        },
    ),
    "list_customers": Statement(
        f"SELECT {CUSTOMER_COLUMNS} FROM demo.customers ORDER BY customer_id LIMIT %(limit)s",
        {"limit": COUNT},
    ),
    "get_customer": Statement(
        f"SELECT {CUSTOMER_COLUMNS} FROM demo.customers WHERE customer_id = %(customer_id)s",
        {"customer_id": TEXT},
    ),
    "update_customer": Statement(  # a partial update: a None keeps the column's value
        "UPDATE demo.customers SET "
        "customer_name = COALESCE(%(customer_name)s, customer_name), "
        "email = COALESCE(%(email)s, email), city = COALESCE(%(city)s, city), "
        "state = COALESCE(%(state)s, state), updated_at = now() "
        f"WHERE customer_id = %(customer_id)s RETURNING {CUSTOMER_COLUMNS}",
        {
            "customer_id": TEXT,
            "customer_name": OPTIONAL_TEXT,
            "email": OPTIONAL_TEXT,
            "city": OPTIONAL_TEXT,
            "state": OPTIONAL_TEXT,
        },
    ),
    "delete_customer": Statement(
        "DELETE FROM demo.customers WHERE customer_id = %(customer_id)s RETURNING customer_id",
        {"customer_id": TEXT},
    ),
    "create_order": Statement(
        "INSERT INTO demo.orders (order_id, customer_id, status, total_amount) "
        "VALUES (%(order_id)s, %(customer_id)s, %(status)s, %(total_amount)s) "
        f"RETURNING {ORDER_COLUMNS}",
        {"order_id": TEXT, "customer_id": TEXT, "status": TEXT, "total_amount": NUMBER},
    ),
    "list_orders": Statement(
        f"SELECT {ORDER_COLUMNS} FROM demo.orders ORDER BY order_id LIMIT %(limit)s",
        {"limit": COUNT},
    ),
    "list_orders_of_customer": Statement(
        f"SELECT {ORDER_COLUMNS} FROM demo.orders WHERE customer_id = %(customer_id)s "
        "ORDER BY order_id LIMIT %(limit)s",
        {"customer_id": TEXT, "limit": COUNT},
    ),
    "get_order": Statement(
        f"SELECT {ORDER_COLUMNS} FROM demo.orders WHERE order_id = %(order_id)s",
        {"order_id": TEXT},
    ),
    "update_order": Statement(
        "UPDATE demo.orders SET status = COALESCE(%(status)s, status), "
        "total_amount = COALESCE(%(total_amount)s, total_amount), updated_at = now() "
        f"WHERE order_id = %(order_id)s RETURNING {ORDER_COLUMNS}",
        {"order_id": TEXT, "status": OPTIONAL_TEXT, "total_amount": OPTIONAL_NUMBER},
    ),
    "delete_order": Statement(
        "DELETE FROM demo.orders WHERE order_id = %(order_id)s RETURNING order_id",
        {"order_id": TEXT},
    ),
}

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.customers (
    customer_id   varchar(32)  PRIMARY KEY,
    customer_name varchar(200) NOT NULL CHECK (length(trim(customer_name)) > 0),
    email         varchar(254) NOT NULL CHECK (email LIKE '_%@_%'),
    city          varchar(100),
    state         varchar(50),
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS demo.orders (
    order_id      varchar(32)   PRIMARY KEY,
    customer_id   varchar(32)   NOT NULL REFERENCES demo.customers (customer_id),
    status        varchar(16)   NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    total_amount  numeric(12, 2) NOT NULL CHECK (total_amount >= 0),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON demo.orders (customer_id);
"""

MIGRATIONS = {
    "migrate": Statement(SCHEMA, {}),
    "describe_schema": Statement(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable "
        "FROM information_schema.columns c WHERE c.table_schema = 'demo' "
        "ORDER BY c.table_name, c.ordinal_position",
        {},
    ),
    "constraints": Statement(
        "SELECT conrelid::regclass::text AS table_name, conname AS name, "
        "pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE connamespace = 'demo'::regnamespace ORDER BY 1, 2",
        {},
    ),
    # A course convenience, not a migration: the walkthrough starts from empty tables.
    "empty_tables": Statement("TRUNCATE demo.orders, demo.customers", {}),
}

STATEMENTS = {"crud": CRUD, "migrations": MIGRATIONS}[os.environ.get("STATEMENT_SET", "crud")]
# The SQLSTATE classes a caller can act on (https://www.postgresql.org/docs/current/errcodes-appendix.html).
SQLSTATES = {
    "23505": "UniqueViolation",
    "23503": "ForeignKeyViolation",
    "23502": "NotNullViolation",
    "23514": "CheckViolation",
    "22001": "ValueTooLong",
    "22003": "NumericOutOfRange",
}

SECRETS = boto3.client("secretsmanager")  # once per execution environment
CA_BUNDLE = os.path.join(os.environ.get("LAMBDA_TASK_ROOT", "."), "rds-ca-bundle.pem")
_credentials = None
_connection = None


class Refused(Exception):
    """A call that breaks the allow list's contract: no SQL was run."""


def check_call(event):
    """The statement and parameters of a call, or Refused saying what is wrong."""
    if not isinstance(event, dict) or set(event) - {"statement", "params"}:
        raise Refused('an event is {"statement": <name>, "params": {...}} and nothing else')
    name, params = event.get("statement"), event.get("params", {})
    if name not in STATEMENTS:
        raise Refused(f"unknown statement {name!r}")
    if not isinstance(params, dict):
        raise Refused("params must be an object")
    declared = STATEMENTS[name].params
    missing = sorted(set(declared) - set(params))
    extra = sorted(set(params) - set(declared))
    if missing or extra:
        raise Refused(f"{name}: missing parameters {missing}, unexpected parameters {extra}")
    for key, value in params.items():
        if type(value) not in declared[key]:  # exact types: True is not a number here
            allowed = "/".join(t.__name__ for t in declared[key])
            raise Refused(f"{name}: parameter {key} must be {allowed}, not {type(value).__name__}")
    return STATEMENTS[name], params


def credentials():
    """The database user and password from the RDS-managed secret, read once."""
    global _credentials
    if _credentials is None:
        secret = SECRETS.get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])
        _credentials = json.loads(secret["SecretString"])  # {"username": ..., "password": ...}
    return _credentials


def connection():
    """The execution environment's connection, opened on first use and after a failure."""
    global _connection, _credentials
    if _connection is None or _connection.closed or _connection.broken:
        login = credentials()
        try:
            _connection = psycopg.connect(
                host=os.environ["DB_HOST"],
                port=int(os.environ.get("DB_PORT", "5432")),
                dbname=os.environ["DB_NAME"],
                user=login["username"],
                password=login["password"],
                sslmode="verify-full",  # TLS, a trusted certificate, and this host's name
                sslrootcert=CA_BUNDLE,
                connect_timeout=5,
                autocommit=True,  # each statement is its own transaction
                row_factory=dict_row,
            )
        except psycopg.OperationalError:
            _credentials = None  # the password may have been rotated: read it again next time
            raise
    return _connection


def json_safe(value):
    """Database values as JSON: numeric as an exact string, timestamps as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def handler(event, context):
    """Run one allowed statement; return its rows, or an error the caller can map."""
    try:
        statement, params = check_call(event)
    except Refused as refused:
        print(f"refused: {refused}")  # the caller has a bug: worth seeing in the logs
        return {"error": {"code": "Refused", "message": str(refused)}}
    try:
        with connection().cursor() as cursor:
            cursor.execute(statement.sql, params or None)  # None: no placeholders to fill
            rows = cursor.fetchall() if cursor.description else []
    except psycopg.errors.DatabaseError as error:
        code = SQLSTATES.get(error.sqlstate or "")
        if code is None:
            raise  # anything else is a failure of this function, and shows as one
        return {
            "error": {
                "code": code,
                "constraint": error.diag.constraint_name,
                "message": error.diag.message_primary,
            }
        }
    return {"rows": [{k: json_safe(v) for k, v in row.items()} for row in rows]}
