"""Master passwords of local Aurora clusters: RDS's rules, generation, and the managed secret."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any, Protocol

from ..motogateway import MotoGateway
from .state import ClusterRecord, combination, invalid

# Characters of generated passwords: printable ASCII without the four RDS refuses (/ " @ and
# space) and without quotes and backslash, which only make copy-and-paste harder.
_PASSWORD_PUNCTUATION = "!#$%&()*+,-.:;<=>?[]^_{|}~"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + _PASSWORD_PUNCTUATION
_FORBIDDEN = set('/"@ ')


def generate_password(length: int = 32) -> str:
    """A strong random master password, as RDS generates for a managed secret."""
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        if all(any(c in chars for c in password) for chars in classes):
            return password


def check_password(password: str, longest: int = 41) -> None:
    """Refuse a MasterUserPassword RDS would refuse: 8 to longest (MySQL 41) printable ASCII."""
    prefix = "The parameter MasterUserPassword is not a valid password"
    if not password:
        raise invalid("The parameter MasterUserPassword must be provided and must not be blank.")
    if len(password) < 8:
        raise invalid(f"{prefix} because it is shorter than 8 characters.")
    if len(password) > longest:
        raise invalid(f"{prefix} because it is longer than {longest} characters.")
    if any(not (32 <= ord(c) < 127) or c in _FORBIDDEN for c in password):
        raise invalid(
            f"{prefix}. Only printable ASCII characters besides '/', '@', '\"', ' ' may be used."
        )


def password_change(
    record: ClusterRecord, params: dict[str, Any]
) -> tuple[dict[str, Any], str | None, bool | None]:
    """Check a ModifyDBCluster's password settings: (params for moto, new password, manage).

    manage is True when the secret is turned on, False when it is turned off, else None.
    """
    given = params.get("MasterUserPassword")
    manage = params.get("ManageMasterUserPassword")
    rotate = bool(params.get("RotateMasterUserPassword"))
    managed = record.secret_arn is not None
    # Rotation is done here; moto would only relabel its fixed secret value.
    forwarded = {k: v for k, v in params.items() if k != "RotateMasterUserPassword"}
    if manage is True and managed:
        forwarded.pop("ManageMasterUserPassword")  # already managed: moto would add a secret
        manage = None
    if manage is False and not managed:
        manage = None
    if given is not None:
        check_password(given)
        if manage is True or (managed and manage is not False):
            raise combination(
                "You can't specify MasterUserPassword for a DB cluster whose master user "
                "password is managed in AWS Secrets Manager."
            )
    if manage is False and given is None:
        raise combination(
            "You must specify MasterUserPassword when you turn off ManageMasterUserPassword."
        )
    if rotate:
        if not params.get("ApplyImmediately"):
            raise combination(
                "You must specify apply immediately when rotating the master user password."
            )
        if not managed or manage is False:
            raise combination(
                "RotateMasterUserPassword is valid only if the master user password is "
                "managed in AWS Secrets Manager."
            )
    password = given
    if password is None and (rotate or manage is True):
        password = generate_password()
    return forwarded, password, manage


class MasterCredentials(Protocol):
    """What the managed secret holds, and where it is: a cluster's or an instance's record."""

    secret_arn: str | None
    region: str
    master_username: str
    password: str


def write_secret(moto: MotoGateway, record: MasterCredentials, *, fresh: bool) -> None:
    """Store the master credentials in the managed secret (fresh: leave no AWSPREVIOUS).

    A fresh secret looks like one RDS just created: a single labelled version. After a
    rotation the old version keeps AWSPREVIOUS, as on AWS.
    """
    arn, region = record.secret_arn, record.region
    value = json.dumps({"username": record.master_username, "password": record.password})
    put = moto.call(
        "secretsmanager", "PutSecretValue", {"SecretId": arn, "SecretString": value}, region
    )
    if not fresh:
        return
    described = moto.call("secretsmanager", "DescribeSecret", {"SecretId": arn}, region)
    for version, stages in described.get("VersionIdsToStages", {}).items():
        if version != put["VersionId"] and "AWSPREVIOUS" in stages:
            params = {
                "SecretId": arn,
                "VersionStage": "AWSPREVIOUS",
                "RemoveFromVersionId": version,
            }
            moto.call("secretsmanager", "UpdateSecretVersionStage", params, region)
