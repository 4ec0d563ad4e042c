"""Pattern 22: an inventory service on Fargate that keeps its stock in Aurora, through RDS Proxy.

A long-running web app with what production code needs around a relational database:
- a small pool of open connections per task (the proxy multiplexes every task's pool onto
  a few database connections, so each task can keep its own without exhausting Aurora);
- one transaction per request, committed or rolled back, never left open;
- parameterised SQL only (values travel separately from the statement text);
- a reservation that cannot oversell: the stock check is part of the UPDATE itself;
- JSON errors with status codes: 400 bad input or too little stock, 404 unknown SKU.

The database user and password come from environment variables that ECS fills from
Secrets Manager when the container starts (the task definition's `secrets`); the proxy's
endpoint and the database name are plain settings. TLS to the proxy is verified with the
default trust store.
"""

import contextlib
import os
import queue
import threading
import time
import uuid

import pymysql
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

DB_HOST = os.environ["DB_HOST"]  # the RDS Proxy endpoint, not the cluster's
DB_PORT = int(os.environ.get("DB_PORT", "3306"))
DB_NAME = os.environ["DB_NAME"]
POOL_SIZE = int(os.environ.get("POOL_SIZE", "10"))
POOL_WAIT_S = 10  # a request waits this long for a free connection, then gets 503
INSTANCE = uuid.uuid4().hex[:8]  # one id per running copy (task) of the service

app = FastAPI(title="Inventory service", version="1.0.0")


def connect() -> pymysql.connections.Connection:
    """A new connection to the proxy, as the app's own database user, over verified TLS."""
    return pymysql.connect(
        host=DB_HOST,
        port=DB_PORT,
        user=os.environ["DB_USER"],  # injected by ECS from Secrets Manager
        password=os.environ["DB_PASSWORD"],  # likewise: never in the task definition
        database=DB_NAME,
        ssl_verify_cert=True,  # the proxy's certificate must chain to a trusted CA ...
        ssl_verify_identity=True,  # ... and name this host
        connect_timeout=5,
        cursorclass=pymysql.cursors.DictCursor,
    )


class Pool:
    """At most `size` open connections, each lent to one request at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: queue.LifoQueue = queue.LifoQueue()  # the most recently used first
        self.slots = threading.BoundedSemaphore(size)

    def fill(self) -> None:
        """Open every connection now, as an ORM's pool with a minimum size does at start."""
        try:
            for _ in range(self.size):
                self.idle.put((connect(), time.monotonic()))
        except pymysql.err.MySQLError as failure:  # the pool opens the rest on demand
            print(f"pool not filled at start: {failure!r}")

    @contextlib.contextmanager
    def transaction(self):
        """A cursor in a transaction: committed if the block ends normally, else rolled back."""
        if not self.slots.acquire(timeout=POOL_WAIT_S):
            raise PoolBusy()
        try:
            try:
                connection, last_used = self.idle.get_nowait()
                if time.monotonic() - last_used > 60:
                    connection.ping(reconnect=False)  # idle a while: make sure it still works
            except queue.Empty:
                connection = connect()
            try:
                with connection.cursor() as cursor:
                    yield cursor
                connection.commit()
            except pymysql.err.MySQLError:
                connection.close()  # its state is unknown: never lend it again
                raise
            except BaseException:
                connection.rollback()
                self.idle.put((connection, time.monotonic()))
                raise
            self.idle.put((connection, time.monotonic()))
        finally:
            self.slots.release()


class PoolBusy(Exception):
    """Every connection of the pool stayed in use for POOL_WAIT_S seconds."""


POOL = Pool(POOL_SIZE)


class NewStock(BaseModel):
    """Stock to add; FastAPI checks the rules, the handler below turns failures into 400."""

    sku: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=100)
    stock: int = Field(ge=0, le=1_000_000)


class Reservation(BaseModel):
    quantity: int = Field(default=1, gt=0, le=1_000_000)


def error(status: int, message: str, **details) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **details})


@app.exception_handler(RequestValidationError)
def bad_request(request: Request, failure: RequestValidationError) -> JSONResponse:
    """400 naming the first field that broke a rule (missing, wrong type, negative ...)."""
    first = failure.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
    return error(400, "invalid request", field=field, detail=first["msg"])


@app.exception_handler(PoolBusy)
def busy(request: Request, failure: PoolBusy) -> JSONResponse:
    return error(503, "all database connections are busy, try again")


@app.exception_handler(pymysql.err.MySQLError)
def database_error(request: Request, failure: pymysql.err.MySQLError) -> JSONResponse:
    """503 with MySQL's error code; the message may name tables, so it stays in the log."""
    print(f"database error on {request.url.path}: {failure!r}")
    code = failure.args[0] if failure.args else None
    return error(503, "database unavailable", error_code=code)


@app.get("/health")
def health() -> JSONResponse:
    """A new login through the proxy: fails as soon as this task's credentials stop working."""
    try:
        connection = connect()
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1 AS ok")
            cursor.fetchone()
    except pymysql.err.MySQLError as failure:
        code = failure.args[0] if failure.args else None
        state = "login refused" if code == 1045 else "unreachable"
        return error(503, "unhealthy", db=state, error_code=code, instance=INSTANCE)
    body = {"status": "healthy", "db": "connected", "via": DB_HOST, "instance": INSTANCE}
    return JSONResponse(body)


@app.get("/inventory")
def list_inventory() -> dict:
    with POOL.transaction() as cursor:
        cursor.execute(
            "SELECT sku, name, stock, reserved, stock - reserved AS available "
            "FROM inventory ORDER BY sku"
        )
        items = cursor.fetchall()
    return {"items": items, "count": len(items)}


@app.post("/inventory")
def add_stock(new: NewStock) -> dict:
    """Add stock to a SKU, creating it the first time (an upsert, in one statement)."""
    with POOL.transaction() as cursor:
        cursor.execute(
            "INSERT INTO inventory (sku, name, stock) VALUES (%s, %s, %s) "
            "ON DUPLICATE KEY UPDATE stock = stock + VALUES(stock), name = VALUES(name)",
            (new.sku, new.name, new.stock),
        )
        cursor.execute(
            "SELECT sku, name, stock, reserved, stock - reserved AS available "
            "FROM inventory WHERE sku = %s",
            (new.sku,),
        )
        item = cursor.fetchone()
    return {"message": "stock updated", "item": item}


@app.post("/inventory/{sku}/reserve")
def reserve(sku: str, reservation: Reservation) -> JSONResponse:
    """Reserve units if enough are available; the WHERE clause makes the check atomic."""
    quantity = reservation.quantity
    with POOL.transaction() as cursor:
        # The row is locked while MySQL evaluates the condition and updates it, so two
        # requests for the last units cannot both succeed.
        cursor.execute(
            "UPDATE inventory SET reserved = reserved + %s "
            "WHERE sku = %s AND stock - reserved >= %s",
            (quantity, sku, quantity),
        )
        reserved = cursor.rowcount == 1
        cursor.execute("SELECT stock - reserved AS available FROM inventory WHERE sku = %s", (sku,))
        row = cursor.fetchone()
    if row is None:
        return error(404, f"unknown SKU {sku}")
    if not reserved:
        return error(400, "insufficient stock", sku=sku, available=row["available"])
    body = {"message": f"reserved {quantity} of {sku}", "available": row["available"]}
    return JSONResponse(body)


if __name__ == "__main__":
    POOL.fill()
    # ECS sends traffic to the container port on the task's network interface (8080 on
    # every interface). The local cloud gives each task its own HOST and PORT instead.
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        log_level="warning",
    )
