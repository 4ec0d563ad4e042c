"""Pattern 20: a Lambda function in the VPC that talks MySQL to Aurora through RDS Proxy.

The function connects with pymysql to the proxy's endpoint, over TLS (verified with the
default trust store), and logs in with a 15-minute IAM token instead of a password: the
database password stays in Secrets Manager, where only the proxy reads it. Every read ends
with a commit, so the proxy can hand the database connection to another client at once.

Actions: "queries" (the seed's ten queries), "hold" (one query, then other work while the
connection stays open, as a real function does), "pin" (the same, after setting a user
variable, which pins the session to one database connection), "ping" (no database: wait
until a given time and name the execution environment, so that many start together).
"""

import os
import time

import boto3
import pymysql

PROXY_HOST = os.environ["PROXY_ENDPOINT"]
CLUSTER_HOST = os.environ["CLUSTER_ENDPOINT"]
PORT = int(os.environ.get("DB_PORT", "3306"))
CLUSTER_PORT = int(os.environ.get("CLUSTER_PORT", "3306"))
DB_USER = os.environ["DB_USER"]
DATABASE = os.environ["DATABASE"]
RDS = boto3.client("rds")  # created once per execution environment, reused by every call

SCHEMA = """CREATE TABLE IF NOT EXISTS products (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    price DECIMAL(10, 2) NOT NULL,
    category VARCHAR(50) NOT NULL DEFAULT 'general',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
)"""


def through_proxy():
    """A connection to the proxy: IAM token as the password, TLS with certificate checks."""
    token = RDS.generate_db_auth_token(DBHostname=PROXY_HOST, Port=PORT, DBUsername=DB_USER)
    return pymysql.connect(
        host=PROXY_HOST,
        port=PORT,
        user=DB_USER,
        password=token,
        database=DATABASE,
        ssl_verify_cert=True,  # the proxy's certificate must chain to a trusted CA ...
        ssl_verify_identity=True,  # ... and name this host
        connect_timeout=10,
    )


def direct(password):
    """A connection straight to the cluster: what every function does without a proxy."""
    return pymysql.connect(
        host=CLUSTER_HOST,
        port=CLUSTER_PORT,
        user=DB_USER,
        password=password,
        database=DATABASE,
        connect_timeout=10,
    )


def handler(event, context):
    """Run one action; a database error is returned with its MySQL error code, not raised."""
    action = event.get("action", "queries")
    if action == "ping":  # keep this environment busy until `until`; say which one it is
        time.sleep(max(0.0, event["until"] - time.time()))
        return {"environment": context.log_stream_name}
    time.sleep(max(0.0, event.get("start_at", 0) - time.time()))  # start with the others
    try:
        if action == "queries":
            return ten_queries()
        if action in ("hold", "pin"):
            return hold(event, pin=action == "pin")
    except pymysql.err.MySQLError as error:
        code, message = error.args if len(error.args) == 2 else (None, str(error))
        return {"error": message, "error_code": code}
    return {"error": f"unknown action {action!r}", "error_code": None}


def ten_queries():
    """The seed's check: ten queries on one connection, each committed."""
    connection = through_proxy()
    try:
        with connection.cursor() as cursor:
            cursor.execute(SCHEMA)
            counts = []
            for _ in range(10):
                cursor.execute("SELECT COUNT(*) FROM products")
                counts.append(cursor.fetchone()[0])
                connection.commit()  # end the transaction: the proxy may reuse the connection
    finally:
        connection.close()
    return {"queriesRun": len(counts), "productCount": counts[-1]}


def hold(event, pin):
    """One query, then `seconds` of other work with the connection still open."""
    via = event.get("via", "proxy")
    connection = through_proxy() if via == "proxy" else direct(event["password"])
    try:
        with connection.cursor() as cursor:
            if pin:
                cursor.execute("SET @request = %s", (time.time_ns(),))  # a user variable pins
            cursor.execute("SELECT CONNECTION_ID()")
            database_connection = cursor.fetchone()[0]
            connection.commit()
        time.sleep(event.get("seconds", 3))  # e.g. calling another service
    finally:
        connection.close()
    return {"via": via, "database_connection": database_connection}
