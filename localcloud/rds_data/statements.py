"""Running one statement (or one batch) on a connection, and MySQL errors as Data API errors.

Results are streamed (pymysql's unbuffered cursor) so that an oversized result set is
refused once it passes the limit instead of being held in memory whole. The statement
timeout is the server's own: MariaDB's `max_statement_time` aborts the statement, as the
Data API stops it when the call times out.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors

from ..protocols import ServiceError
from . import errors, results, sql
from .results import Column, ResultOptions

ER_STATEMENT_TIMEOUT = 1969  # MariaDB: "Query execution was interrupted (max_statement_time ...)"
CANNOT_CONNECT = {2002, 2003, 2005, 2006, 2013}  # client errors: the server is not reachable
FETCH_ROWS = 256


@dataclass(frozen=True)
class StatementRequest:
    """How ExecuteStatement wants its answer."""

    include_metadata: bool = False
    json_format: bool = False
    options: ResultOptions = ResultOptions()
    continue_after_timeout: bool = False
    timeout: float = 45.0

    @classmethod
    def from_params(cls, params: dict[str, Any], timeout: float) -> StatementRequest:
        """From ExecuteStatement's parameters."""
        return cls(
            include_metadata=bool(params.get("includeResultMetadata")),
            json_format=params.get("formatRecordsAs") == "JSON",
            options=ResultOptions.from_request(params.get("resultSetOptions")),
            continue_after_timeout=bool(params.get("continueAfterTimeout")),
            timeout=timeout,
        )


def translate(error: Exception, connection: Any = None) -> ServiceError:
    """A pymysql error as the Data API reports it."""
    if isinstance(error, ServiceError):
        return error
    code = error.args[0] if error.args and isinstance(error.args[0], int) else 0
    message = str(error.args[1]) if len(error.args) > 1 else str(error)
    if code == ER_STATEMENT_TIMEOUT:
        return errors.statement_timeout(_thread_id(connection))
    if code in CANNOT_CONNECT and connection is None:
        return errors.unavailable()
    return errors.database_error(message, code, getattr(error, "sqlstate", None))


def _thread_id(connection: Any) -> int | None:
    """The server's id of a connection (the Data API's dbConnectionId)."""
    try:
        return int(connection.thread_id()) if connection is not None else None
    except Exception:
        return None


def set_timeout(connection: Any, seconds: float) -> None:
    """Set the session's statement time limit (0: none) unless it is set already."""
    if getattr(connection, "_localcloud_timeout", None) == seconds:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION max_statement_time = {float(seconds):.3f}")
    connection._localcloud_timeout = seconds


def execute(
    connection: Any, found: sql.Scan, args: dict[str, Any], request: StatementRequest
) -> dict[str, Any]:
    """Run one ExecuteStatement on a connection and build its response."""
    # continueAfterTimeout: the statement must not be stopped; the caller still hears of the
    # timeout (after the statement ends here, at the deadline on AWS).
    set_timeout(connection, 0 if request.continue_after_timeout else request.timeout)
    started = time.monotonic()
    cursor = connection.cursor(pymysql.cursors.SSCursor)
    try:
        try:
            cursor.execute(found.text, args)
            response = _response(cursor, request)
        finally:
            _close(cursor)
    except pymysql.err.Error as error:
        raise translate(error, connection) from None
    if request.continue_after_timeout and time.monotonic() - started > request.timeout:
        raise errors.statement_timeout(_thread_id(connection))
    return response


def _close(cursor: Any) -> None:
    """Close a streaming cursor, reading whatever it did not fetch (a dead link: nothing)."""
    with contextlib.suppress(pymysql.err.Error):
        cursor.close()


def _response(cursor: Any, request: StatementRequest) -> dict[str, Any]:
    """The response members for the statement the cursor just ran."""
    if cursor.description is None:  # no result set: DML, DDL, SET...
        insert_id = cursor.lastrowid
        return {
            "numberOfRecordsUpdated": max(cursor.rowcount, 0),
            "generatedFields": [{"longValue": insert_id}] if insert_id else [],
        }
    columns = [Column.from_field(f) for f in cursor._result.fields]
    limit = results.MAX_JSON_BYTES if request.json_format else results.MAX_RESPONSE_BYTES
    rows: list[tuple] = []
    size = 0
    while batch := cursor.fetchmany(FETCH_ROWS):
        size += sum(results.row_size(row) for row in batch)
        if size > limit:
            raise errors.response_too_large()
        rows.extend(batch)
    response: dict[str, Any] = {"numberOfRecordsUpdated": 0}
    if request.json_format:
        response["formattedRecords"] = results.formatted_records(rows, columns, request.options)
        return response
    response["records"] = results.records(rows, columns, request.options)
    if request.include_metadata:
        response["columnMetadata"] = [results.metadata(c) for c in columns]
    return response


def execute_batch(
    connection: Any,
    found: sql.Scan,
    parameter_sets: list[list[dict[str, Any]]],
    timeout: float,
) -> list[dict[str, Any]]:
    """Run a BatchExecuteStatement: one statement per parameter set, in order."""
    argument_sets = [sql.arguments(found, parameters) for parameters in parameter_sets]
    set_timeout(connection, timeout)
    update_results = []
    try:
        with connection.cursor() as cursor:
            for args in argument_sets:
                cursor.execute(found.text, args)
                insert_id = cursor.lastrowid if cursor.description is None else 0
                update_results.append(
                    {"generatedFields": [{"longValue": insert_id}] if insert_id else []}
                )
    except pymysql.err.Error as error:
        raise translate(error, connection) from None
    return update_results
