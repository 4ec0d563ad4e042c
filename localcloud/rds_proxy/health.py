"""What a proxy's target health rests on: the secrets it can read and a login to the cluster.

AWS reports a target UNAVAILABLE with AUTH_FAILURE "Proxy does not have any registered
credentials" when the proxy cannot use any of its secrets
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy.troubleshooting.html).
"""

from __future__ import annotations

import json

import pymysql

from ..motogateway import MotoGateway
from ..protocols import ServiceError
from .records import NO_CREDENTIALS, Health, ProxyRecord

_UNREACHABLE = (2003, 2013)  # pymysql: cannot connect / lost connection


def read_credentials(moto: MotoGateway, record: ProxyRecord) -> list[tuple[str, str]]:
    """(username, password) of every readable secret of the proxy, in its Auth order."""
    return [(user, password) for user, password, _ in read_auth_entries(moto, record)]


def read_auth_entries(moto: MotoGateway, record: ProxyRecord) -> list[tuple[str, str, str]]:
    """(username, password, IAMAuth) of every readable secret of the proxy, in its Auth order."""
    found = []
    for entry in record.auth:
        arn = entry.get("SecretArn")
        if not arn:
            continue
        try:
            value = moto.call("secretsmanager", "GetSecretValue", {"SecretId": arn}, record.region)
            secret = json.loads(value.get("SecretString") or "{}")
            user, password = str(secret["username"]), str(secret["password"])
        except (ServiceError, ValueError, KeyError, TypeError):
            continue
        found.append((user, password, str(entry.get("IAMAuth") or "DISABLED")))
    return found


def role_exists(moto: MotoGateway, record: ProxyRecord) -> bool:
    """Whether the proxy's IAM role exists (its policies are not evaluated)."""
    name = record.role_arn.rsplit("/", 1)[-1]
    try:
        moto.call("iam", "GetRole", {"RoleName": name}, record.region)
    except ServiceError:
        return False
    return True


def log_in(host: str, port: int, credentials: list[tuple[str, str]]) -> tuple[int | None, Health]:
    """(the cluster's max_connections, AVAILABLE) after one secret's login; else why not."""
    unreachable = False
    for user, password in credentials:
        try:
            connection = pymysql.connect(
                host=host, port=port, user=user, password=password, connect_timeout=5
            )
            with connection, connection.cursor() as cursor:
                cursor.execute("SELECT @@max_connections")
                return int(cursor.fetchone()[0]), Health("AVAILABLE")
        except pymysql.err.OperationalError as error:
            unreachable = unreachable or bool(error.args and error.args[0] in _UNREACHABLE)
    if unreachable:
        return None, Health("UNAVAILABLE", "UNREACHABLE", "Unable to reach the DB cluster")
    return None, Health("UNAVAILABLE", "AUTH_FAILURE", NO_CREDENTIALS)
