"""The RDS Data API provider: real SQL on the Aurora MySQL cluster's local MariaDB server.

ExecuteStatement, BatchExecuteStatement, BeginTransaction, CommitTransaction and
RollbackTransaction find the cluster through the RDS provider, log in with the username and
password of the Secrets Manager secret (read from moto), and run the statement on the
cluster's private MariaDB server. The API is AWS's
(https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/Welcome.html).

AWS semantics kept:
- `:name` placeholders with typed parameters (stringValue, longValue, doubleValue,
  booleanValue, blobValue, isNull; typeHint DATE `YYYY-MM-DD`, TIME `HH:MM:SS[.FFF]`,
  TIMESTAMP `YYYY-MM-DD HH:MM:SS[.FFF]`, DECIMAL, JSON, UUID); values are bound, never
  pasted into the SQL. Array parameters: 400 BadRequestException "Array parameters are not
  supported."; a bad date/time: BadRequestException `Cannot parse date or time "..."`; a
  Field with no member set: `Parameter "x" has value with no field set`.
- records of Fields by JDBC type (integers: longValue; FLOAT/DOUBLE: doubleValue;
  BIT/BOOLEAN, i.e. TINYINT(1) and BIT(1): booleanValue; binary: blobValue; DECIMAL, dates,
  times and text: stringValue, fractional seconds without trailing zeros); columnMetadata only
  with includeResultMetadata; formatRecordsAs JSON gives formattedRecords (labels as keys,
  numbers, strings, true/false, null, BLOBs base64, DECIMAL a string unless DOUBLE_OR_LONG)
  and no records; resultSetOptions decimalReturnType and longReturnType; generatedFields with
  the auto-increment id; numberOfRecordsUpdated counting matched rows (Connector/J's default).
- Without transactionId every call commits on its own (a batch: statement by statement).
  BeginTransaction returns a 184-character id; a transaction idle for 3 minutes is rolled
  back; an unknown, expired, committed or rolled-back id: 404 TransactionNotFoundException
  "Transaction <id> isn't found"; a call while the transaction runs another: 400
  DatabaseErrorException "Transaction is still running a query"; a result over the size
  limit ends the transaction (rolled back).
- Errors: SQL and login errors (a wrong password in the secret included) 400
  DatabaseErrorException "<MySQL message>; Error code: <n>; SQLState: <state>"; an ARN that
  matches no cluster, or the endpoint not enabled: 400 HttpEndpointNotEnabledException; no DB
  instance: 404 DatabaseNotFoundException; an unreadable secret: 400 SecretsErrorException;
  a secret without username and password: 400 InvalidSecretException; a paused cluster: 400
  DatabaseResumingException "The Aurora DB instance <id> is resuming after being
  auto-paused..."; sql over 65,536 characters, several statements in one call
  ("Multistatements aren't supported.") or the schema parameter: 400 ValidationException;
  records over 1 MiB (formattedRecords over 10 MB): 400 BadRequestException "Database
  returned more than the allowed response size limit"; over 45 s: 400
  StatementTimeoutException with dbConnectionId.
- Nothing is published to CloudWatch.

Where the local cloud differs from AWS:
- The server is MariaDB 10.11, not Aurora MySQL 8.0: SQL dialect, error messages and codes
  are MariaDB's; JSON columns are LONGTEXT (columnMetadata typeName LONGTEXT, not JSON); a
  UUID typeHint binds a string; metadata is derived from the protocol's column flags in
  Connector/J's manner (precision, isCaseSensitive and nullable of expressions may differ).
- The SQL error wording `...; Error code: n; SQLState: s` is inferred from what clients of
  the v2 Data API parse; AWS's exact text for MySQL was not confirmed. Messages of the
  secret, missing-parameter, UUID/DECIMAL and JSON-duplicate-column errors are local wording.
- Without the `database` parameter the local cloud uses the cluster's DatabaseName; AWS
  connects without a default database, so pass `database` to be portable.
- The 45 s limit is MariaDB's max_statement_time (LOCALCLOUD_DATA_API_STATEMENT_TIMEOUT_SECONDS
  changes it); with continueAfterTimeout the statement runs to its end and the timeout error
  comes then, not at 45 s. The transaction idle limit is
  LOCALCLOUD_DATA_API_TRANSACTION_IDLE_SECONDS (default 180); the 24 h cap is not applied.
- The response size counts the bytes of the values (numbers as 8), not AWS's internal
  encoding; the 64 KB row limit ("Packet for query is too large") is not applied. A
  multi-row INSERT reports only the first generated id. BIGINT UNSIGNED values above a Java
  long come back as stringValue; BIT(n>1) as blobValue; YEAR as a string.
- IAM is not enforced and the secret is read from moto in-process; any secret with a
  username and password works, as on AWS, but the login happens on a local server.
- Pooled connections stay open up to 5 s after a call; the capacity monitor counts them as
  client connections, so they delay an auto-pause by that much.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..context import CloudContext
from ..protocols import ServiceError
from ..rds.provider import RdsProvider
from ..rds.state import ClusterDatabase
from ..registry import Provider, RequestContext
from . import errors, sql, statements
from .connections import Pools, Target
from .statements import StatementRequest
from .transactions import (
    DEFAULT_IDLE_SECONDS,
    MAX_ID_LENGTH,
    Transaction,
    TransactionRegistry,
    new_transaction_id,
    rollback_and_release,
)

DEFAULT_STATEMENT_TIMEOUT = 45.0
_SECRET_REGION = re.compile(r"arn:aws[\w-]*:secretsmanager:([a-z0-9-]+):")
_CLUSTER_ID = re.compile(r"arn:aws[\w-]*:rds:[^:]*:[^:]*:cluster:(.+)")


class RdsDataProvider(Provider):
    """The Data API on the local Aurora MySQL clusters."""

    service = "rds-data"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.pools = Pools()
        idle = os.environ.get("LOCALCLOUD_DATA_API_TRANSACTION_IDLE_SECONDS")
        self.transactions = TransactionRegistry(float(idle or DEFAULT_IDLE_SECONDS))
        timeout = os.environ.get("LOCALCLOUD_DATA_API_STATEMENT_TIMEOUT_SECONDS")
        self.statement_timeout = float(timeout or DEFAULT_STATEMENT_TIMEOUT)

    # ----- operations -------------------------------------------------------------------

    def ExecuteStatement(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Runs one SQL statement on the cluster's MariaDB server."""
        _required(params, "resourceArn", "secretArn", "sql")
        _check_common(params)
        found = sql.prepare(params["sql"])
        args = sql.arguments(found, params.get("parameters"))
        request = StatementRequest.from_params(params, self.statement_timeout)
        with self._session(params, context) as connection:
            return statements.execute(connection, found, args, request)

    def BatchExecuteStatement(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Runs one statement per parameter set; each commits unless in a transaction."""
        _required(params, "resourceArn", "secretArn", "sql")
        _check_common(params)
        found = sql.prepare(params["sql"])
        parameter_sets = params.get("parameterSets") or []
        with self._session(params, context) as connection:
            update_results = statements.execute_batch(
                connection, found, parameter_sets, self.statement_timeout
            )
        return {"updateResults": update_results}

    def BeginTransaction(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Starts a transaction on a connection of its own and returns its id."""
        _required(params, "resourceArn", "secretArn")
        _check_common(params)
        cluster = self._cluster(params["resourceArn"], context)
        target = self._target(cluster, params["secretArn"], params.get("database"), context)
        self._wake(cluster)
        connection = self._open(target)
        try:
            connection.autocommit(False)  # JDBC setAutoCommit(false): DDL commits implicitly
        except Exception as error:
            self.pools.release(target, connection, broken=True)
            raise statements.translate(error, connection) from None
        transaction = Transaction(
            id=new_transaction_id(),
            cluster_arn=cluster.arn,
            connection=connection,
            release=lambda c, broken: self.pools.release(target, c, broken),
        )
        self.transactions.add(transaction)
        return {"transactionId": transaction.id}

    def CommitTransaction(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Commits a transaction and forgets its id."""
        self._end(params, context, commit=True)
        return {"transactionStatus": "Transaction Committed"}

    def RollbackTransaction(
        self, params: dict[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """Rolls a transaction back and forgets its id."""
        self._end(params, context, commit=False)
        return {"transactionStatus": "Rollback Complete"}

    # ----- provider life cycle ----------------------------------------------------------

    def reset(self) -> None:
        """Roll back every transaction and close every pooled connection."""
        self.transactions.close_all()
        self.pools.close_all()

    def shutdown(self) -> None:
        """As reset: nothing of the Data API outlives the daemon."""
        self.reset()

    def status(self) -> dict[str, Any]:
        """Open transactions and idle pooled connections."""
        return {
            "open_transactions": self.transactions.count(),
            "idle_connections": self.pools.idle_count(),
        }

    # ----- the pieces -------------------------------------------------------------------

    def _end(self, params: dict[str, Any], context: RequestContext, commit: bool) -> None:
        """Commit or roll back a transaction; either way it is over afterwards."""
        _required(params, "resourceArn", "secretArn", "transactionId")
        _check_common(params)
        cluster = self._cluster(params["resourceArn"], context)
        self._secret(params["secretArn"], context)
        with self.transactions.use(params["transactionId"], cluster.arn) as transaction:
            self.transactions.finish(transaction)
            connection = transaction.connection
            try:
                connection.commit() if commit else connection.rollback()
            except Exception as error:
                rollback_and_release(transaction)
                raise statements.translate(error, connection) from None
            transaction.release(connection, False)

    @contextmanager
    def _session(self, params: dict[str, Any], context: RequestContext) -> Iterator[Any]:
        """The connection a statement runs on: its transaction's, or a pooled autocommit one."""
        cluster = self._cluster(params["resourceArn"], context)
        transaction_id = params.get("transactionId")
        if not transaction_id:
            target = self._target(cluster, params["secretArn"], params.get("database"), context)
            self._wake(cluster)
            connection = self._open(target)
            try:
                yield connection
            finally:
                self.pools.release(target, connection, broken=not connection.open)
            return
        self._secret(params["secretArn"], context)
        self._wake(cluster)
        with self.transactions.use(transaction_id, cluster.arn) as transaction:
            try:
                yield transaction.connection
            except ServiceError as error:
                # AWS ends a transaction whose result was too large; a lost link ends it too.
                if error.message == errors.RESPONSE_TOO_LARGE or not transaction.connection.open:
                    self.transactions.finish(transaction)
                    rollback_and_release(transaction)
                raise

    def _cluster(self, resource_arn: str, context: RequestContext) -> ClusterDatabase:
        """The cluster behind resourceArn, with its Data API enabled and an instance."""
        rds = self.cloud.providers.get(RdsProvider)
        try:
            cluster = rds.cluster_database(context.region, context.account_id, resource_arn)
        except KeyError:
            # AWS words an ARN that matches no cluster like a cluster without the Data API.
            match = _CLUSTER_ID.fullmatch(resource_arn)
            raise errors.endpoint_not_enabled(match.group(1) if match else resource_arn) from None
        if not cluster.http_endpoint_enabled:
            raise errors.endpoint_not_enabled(cluster.identifier)
        if not cluster.instance_ids:
            raise errors.no_instance(cluster.identifier)
        return cluster

    def _secret(self, secret_arn: str, context: RequestContext) -> tuple[str, str]:
        """The username and password in a Secrets Manager secret (moto's, read in-process)."""
        match = _SECRET_REGION.match(secret_arn)
        region = match.group(1) if match else context.region
        try:
            found = self.cloud.moto.secret_value(context.account_id, region, secret_arn)
        except ServiceError as error:
            raise errors.secret_error(error.message) from None
        try:
            secret = json.loads(found.get("SecretString") or "")
        except ValueError:
            secret = None
        username = secret.get("username") if isinstance(secret, dict) else None
        password = secret.get("password") if isinstance(secret, dict) else None
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise errors.invalid_secret(
                'The secret\'s SecretString must be a JSON object with "username" and '
                '"password" strings.'
            )
        return username, password

    def _target(
        self,
        cluster: ClusterDatabase,
        secret_arn: str,
        database: str | None,
        context: RequestContext,
    ) -> Target:
        """The login for a call: the secret's credentials on the cluster's server."""
        username, password = self._secret(secret_arn, context)
        return Target(cluster.host, cluster.port, username, password, database or cluster.database)

    def _wake(self, cluster: ClusterDatabase) -> None:
        """Tell the capacity monitor about the call; a paused cluster answers 'resuming'."""
        capacity = self.cloud.providers.get(RdsProvider).capacity  # None after shutdown
        if capacity is not None and capacity.wake(cluster.identifier):
            instance = cluster.instance_ids[0] if cluster.instance_ids else cluster.identifier
            raise errors.resuming(instance)

    def _open(self, target: Target) -> Any:
        """A pooled connection for target; a failed login answers as the Data API does."""
        try:
            return self.pools.acquire(target)
        except Exception as error:
            raise statements.translate(error) from None


def _required(params: dict[str, Any], *names: str) -> None:
    """Refuse a request without a required member, as AWS's validation does."""
    for name in names:
        if params.get(name) is None:
            raise errors.missing(name)


def _check_common(params: dict[str, Any]) -> None:
    """Refuse members the Data API refuses whatever the statement."""
    if len(params.get("transactionId") or "") > MAX_ID_LENGTH:
        raise errors.too_long("transactionId", MAX_ID_LENGTH)
    if len(params.get("database") or "") > 64:
        raise errors.too_long("database", 64)
    if params.get("schema"):
        raise errors.validation("The schema parameter isn't supported.")
