"""The Data API's error responses, one constructor each, so every module words them alike.

Codes and HTTP statuses come from botocore's rds-data model; the messages follow what AWS
is seen to return (the provider's module docstring says which ones are confirmed).
"""

from __future__ import annotations

from ..protocols import ServiceError

RESPONSE_TOO_LARGE = "Database returned more than the allowed response size limit"


def validation(message: str) -> ServiceError:
    """400 ValidationException: the request itself is malformed."""
    return ServiceError("ValidationException", message, 400)


def too_long(member: str, limit: int) -> ServiceError:
    """The standard AWS validation message for a string over its length limit."""
    return validation(
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def missing(member: str) -> ServiceError:
    """The standard AWS validation message for a missing required member."""
    return validation(
        f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
        "Member must not be null"
    )


def bad_request(message: str) -> ServiceError:
    """400 BadRequestException: a call or parameter the Data API rejects before the database."""
    return ServiceError("BadRequestException", message, 400)


def database_error(message: str, errno: int, sqlstate: str | None) -> ServiceError:
    """400 DatabaseErrorException with the v2 Data API's MySQL wording."""
    return ServiceError(
        "DatabaseErrorException",
        f"{message}; Error code: {errno}; SQLState: {sqlstate or 'HY000'}",
        400,
    )


def still_running() -> ServiceError:
    """A second call on a transaction whose previous call has not finished."""
    return ServiceError("DatabaseErrorException", "Transaction is still running a query", 400)


def transaction_not_found(transaction_id: str) -> ServiceError:
    """404 TransactionNotFoundException: unknown, expired, committed or rolled back."""
    return ServiceError(
        "TransactionNotFoundException", f"Transaction {transaction_id} isn't found", 404
    )


def endpoint_not_enabled(cluster_id: str) -> ServiceError:
    """400 HttpEndpointNotEnabledException (AWS's answer for an ARN matching no cluster too)."""
    return ServiceError(
        "HttpEndpointNotEnabledException", f"HttpEndpoint is not enabled for cluster {cluster_id}"
    )


def no_instance(cluster_id: str) -> ServiceError:
    """404 DatabaseNotFoundException: the cluster has no DB instance to run SQL on."""
    return ServiceError(
        "DatabaseNotFoundException", f"DB cluster {cluster_id} doesn't have a DB instance", 404
    )


def resuming(instance_id: str) -> ServiceError:
    """400 DatabaseResumingException: the call woke a paused cluster; retry in a few seconds."""
    return ServiceError(
        "DatabaseResumingException",
        f"The Aurora DB instance {instance_id} is resuming after being auto-paused. "
        "Please wait a few seconds and try again.",
    )


def unavailable() -> ServiceError:
    """504 DatabaseUnavailableException: the writer's server does not answer."""
    return ServiceError(
        "DatabaseUnavailableException",
        "The writer instance in the DB cluster isn't available.",
        504,
        sender_fault=False,
    )


def secret_error(message: str) -> ServiceError:
    """400 SecretsErrorException: the secret could not be read (e.g. no such secret)."""
    return ServiceError("SecretsErrorException", message, 400)


def invalid_secret(message: str) -> ServiceError:
    """400 InvalidSecretException: the secret has no usable username and password."""
    return ServiceError("InvalidSecretException", message, 400)


def statement_timeout(connection_id: int | None) -> ServiceError:
    """400 StatementTimeoutException, with the server's connection id as AWS gives it."""
    fields = {"dbConnectionId": connection_id} if connection_id is not None else {}
    return ServiceError("StatementTimeoutException", "Query timed out", 400, fields=fields)


def response_too_large() -> ServiceError:
    """400 BadRequestException: the result is over the Data API's size limit."""
    return bad_request(RESPONSE_TOO_LARGE)
