"""A database user for one application: its own password, its own secret, its own grants.

The master user can do anything to the cluster; an application should not. `ensure_app_user`
creates a MySQL user with exactly the privileges given (e.g. SELECT, INSERT, UPDATE on one
table), keeps its password in a Secrets Manager secret of its own (JSON with `username`
and `password`, the shape RDS Proxy and ECS `secrets` read), and runs the SQL through the
Data API with the master secret, so no password ever appears in a notebook.
`allow_through_proxy` lets an RDS Proxy log that user in; `rotate_password` changes the
password in the database and in the secret. Teardown drops the user, takes the secret off
any proxy and deletes it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import cleanup, naming
from ..costs import Price
from ..lab import Lab
from ..waiting import wait_for
from .clusters import ClusterInfo, cluster_info_from
from .lookup import CLUSTERS, describe

APP_USER_KIND = "aurora app user"
USER_TAG = "course-database-user"  # marks the secrets this module made (teardown finds them)
PROXY_POLICY_PREFIX = "course-read-"  # the extra inline policy a proxy's role gets per secret
PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
PASSWORD_LENGTH = 32
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class AppUser:
    """An application's database user and the secret that holds its credentials."""

    username: str
    secret_arn: str
    secret_name: str
    cluster_identifier: str
    database: str

    def value_from(self, key: str) -> str:
        """An ECS `secrets` valueFrom for one JSON key of the secret (`<arn>:<key>::`)."""
        return f"{self.secret_arn}:{key}::"


def grant_statements(
    username: str, database: str, privileges: Mapping[str, Sequence[str]]
) -> list[str]:
    """REVOKE everything, then GRANT exactly these privileges per table (no call made)."""
    check_username(username)
    statements = [f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{username}'@'%'"]
    for table, wanted in sorted(privileges.items()):
        if not _TABLE.match(table):
            raise ValueError(f"table name {table!r}: use letters, digits and underscores")
        unknown = sorted({p.upper() for p in wanted} - PRIVILEGES)
        if unknown or not wanted:
            raise ValueError(
                f"privileges on {table}: choose from {sorted(PRIVILEGES)}, not {list(wanted)}"
            )
        listed = ", ".join(sorted({p.upper() for p in wanted}))
        statements.append(f"GRANT {listed} ON `{database}`.`{table}` TO '{username}'@'%'")
    return statements


def check_username(username: str) -> str:
    """Return the MySQL user name, or raise ValueError saying what is allowed."""
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise ValueError(
            f"username must be 1 to 32 lowercase letters, digits or underscores starting with "
            f"a letter, not {username!r}"
        )
    return username


def ensure_app_user(
    lab: Lab,
    pattern: str,
    name: str,
    cluster: ClusterInfo,
    *,
    username: str,
    privileges: Mapping[str, Sequence[str]],
) -> AppUser:
    """Get or create the user, its secret and exactly these grants; the secret's password wins."""
    check_username(username)
    secret_name = lab.name(pattern, name, 512)
    secrets = lab.client("secretsmanager")
    try:
        found = secrets.get_secret_value(SecretId=secret_name)
        secret_arn, password = found["ARN"], json.loads(found["SecretString"])["password"]
    except secrets.exceptions.ResourceNotFoundException:
        password = _new_password(lab)
        secret_arn = secrets.create_secret(
            Name=secret_name,
            Description=f"Course pattern {pattern}: database user {username}",
            SecretString=_secret_string(username, password, cluster),
            Tags=naming.tag_list({**lab.tags(pattern), USER_TAG: username}),
        )["ARN"]
        lab.ledger.record(APP_USER_KIND, secret_name, pattern)
    user = f"'{username}'@'%'"
    # CREATE ... IF NOT EXISTS leaves an existing user's password alone: ALTER sets it.
    as_master(lab, cluster, f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY :password", password)
    as_master(lab, cluster, f"ALTER USER {user} IDENTIFIED BY :password", password)
    for statement in grant_statements(username, cluster.database, privileges):
        as_master(lab, cluster, statement)
    del password
    return AppUser(username, secret_arn, secret_name, cluster.identifier, cluster.database)


def rotate_password(lab: Lab, cluster: ClusterInfo, user: AppUser) -> str:
    """A new password in the database, then in the secret; returns the secret's new VersionId.

    Tasks that already run keep the old value in their environment: ECS reads a secret
    only when it starts a container.
    """
    password = _new_password(lab)
    as_master(lab, cluster, f"ALTER USER '{user.username}'@'%' IDENTIFIED BY :password", password)
    version = lab.client("secretsmanager").put_secret_value(
        SecretId=user.secret_arn, SecretString=_secret_string(user.username, password, cluster)
    )["VersionId"]
    del password
    return version


def allow_through_proxy(lab: Lab, proxy_name: str, user: AppUser) -> list[dict[str, Any]]:
    """Let the proxy read the user's secret and log the user in with its password (no IAM).

    Adds the secret to the proxy's `Auth` (IAMAuth DISABLED: the application sends the
    password, over TLS) and gives the proxy's role one extra inline policy to read it.
    Returns the proxy's Auth entries. Existing entries (e.g. an IAM-only master user) stay.
    """
    rds = lab.client("rds")
    proxy = rds.describe_db_proxies(DBProxyName=proxy_name)["DBProxies"][0]
    role_name = proxy["RoleArn"].rsplit("/", 1)[-1]
    lab.client("iam").put_role_policy(
        RoleName=role_name,
        PolicyName=_proxy_policy_name(user.secret_name),
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadTheAppUserSecret",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": user.secret_arn,
                    }
                ],
            }
        ),
    )
    current = [_auth_config(entry) for entry in proxy.get("Auth", [])]
    if all(entry["SecretArn"] != user.secret_arn for entry in current):
        entry = {
            "AuthScheme": "SECRETS",
            "SecretArn": user.secret_arn,
            "IAMAuth": "DISABLED",
            "ClientPasswordAuthType": "MYSQL_NATIVE_PASSWORD",
        }
        rds.modify_db_proxy(DBProxyName=proxy_name, Auth=[*current, entry])
    proxy = wait_for(
        lambda: _proxy_available(rds, proxy_name),
        what=f"proxy {proxy_name} taking the new secret",
        pace=lab.pace.rds_proxy_available,
    )
    return proxy.get("Auth", [])


def as_master(lab: Lab, cluster: ClusterInfo, sql: str, password: str | None = None) -> None:
    """Run one statement as the master user through the Data API (`:password` bound if given).

    The password travels as a bound parameter, never inside the SQL text.
    """
    if not cluster.secret_arn:
        raise ValueError(f"cluster {cluster.identifier} has no RDS-managed master secret")
    arguments: dict[str, Any] = {
        "resourceArn": cluster.arn,
        "secretArn": cluster.secret_arn,
        "database": cluster.database,
        "sql": sql,
    }
    if password is not None:
        arguments["parameters"] = [{"name": "password", "value": {"stringValue": password}}]
    client = lab.client("rds-data")

    def attempt() -> bool:
        try:
            client.execute_statement(**arguments)
        except client.exceptions.DatabaseResumingException:
            return False  # an auto-paused cluster wakes up in seconds: try again
        return True

    wait_for(attempt, what="the statement (database resuming)", timeout=120, estimate=1, interval=3)


def _auth_config(entry: dict[str, Any]) -> dict[str, Any]:
    """A describe_db_proxies Auth entry as the UserAuthConfig modify_db_proxy takes."""
    keys = ("AuthScheme", "SecretArn", "IAMAuth", "ClientPasswordAuthType", "Description")
    return {key: entry[key] for key in keys if entry.get(key)}


def _proxy_available(rds: Any, proxy_name: str) -> dict[str, Any] | None:
    proxy = rds.describe_db_proxies(DBProxyName=proxy_name)["DBProxies"][0]
    return proxy if proxy["Status"] == "available" else None


def _proxy_policy_name(secret_name: str) -> str:
    return f"{PROXY_POLICY_PREFIX}{secret_name}"[:128]


def _new_password(lab: Lab) -> str:
    """A random password without punctuation (nothing to escape in any client or shell)."""
    return lab.client("secretsmanager").get_random_password(
        PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True
    )["RandomPassword"]


def _secret_string(username: str, password: str, cluster: ClusterInfo) -> str:
    """The JSON RDS uses for database secrets; RDS Proxy needs username and password."""
    return json.dumps(
        {
            "engine": "mysql",
            "username": username,
            "password": password,
            "dbname": cluster.database,
            "dbClusterIdentifier": cluster.identifier,
        }
    )


# ----- teardown -----------------------------------------------------------------------------


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """The course's app-user secrets (all runs): named like the course and tagged."""
    for page in lab.client("secretsmanager").get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            parts = naming.parse_name(secret["Name"])
            tags = {t["Key"]: t["Value"] for t in secret.get("Tags", [])}
            if parts is not None and USER_TAG in tags:
                yield cleanup.Resource(
                    APP_USER_KIND,
                    secret["Name"],
                    parts.pattern,
                    parts.run_id,
                    {"arn": secret["ARN"]},
                )


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Take the secret off every proxy, drop the user if its cluster is up, delete the secret."""
    secrets, rds = lab.client("secretsmanager"), lab.client("rds")
    arn = resource.detail["arn"]
    try:
        value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    except secrets.exceptions.ResourceNotFoundException:
        return
    for page in rds.get_paginator("describe_db_proxies").paginate():
        for proxy in page["DBProxies"]:
            _forget_secret(lab, proxy, arn, resource.identifier)
    cluster = describe(rds, CLUSTERS, value.get("dbClusterIdentifier", ""))
    if cluster and cluster.get("Status") == "available" and cluster.get("HttpEndpointEnabled"):
        username = check_username(value["username"])
        as_master(lab, cluster_info_from(cluster), f"DROP USER IF EXISTS '{username}'@'%'")
    with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _forget_secret(lab: Lab, proxy: dict[str, Any], arn: str, secret_name: str) -> None:
    """Remove the secret from one proxy's Auth and the proxy role's extra policy."""
    rds, iam = lab.client("rds"), lab.client("iam")
    current = [_auth_config(entry) for entry in proxy.get("Auth", [])]
    remaining = [entry for entry in current if entry.get("SecretArn") != arn]
    if len(remaining) == len(current):
        return
    if remaining and proxy.get("Status") == "available":  # a proxy needs at least one secret
        rds.modify_db_proxy(DBProxyName=proxy["DBProxyName"], Auth=remaining)
    role_name = proxy.get("RoleArn", "").rsplit("/", 1)[-1]
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role_policy(RoleName=role_name, PolicyName=_proxy_policy_name(secret_name))


# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {"secret_month": Price(0.40, "secret-month", "plus $0.05 per 10,000 API calls")}

RESOURCE_KINDS = [
    # The tasks that log in as the user stop first; the cluster and its instance go after.
    cleanup.ResourceKind(APP_USER_KIND, _find, _delete, after=("ecs service", "ecs task")),
]
