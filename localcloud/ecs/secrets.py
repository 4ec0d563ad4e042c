"""Container definitions' `secrets`: values from Secrets Manager or SSM Parameter Store.

Each entry's `valueFrom` is resolved when the task starts, and the value becomes an
environment variable of the container's process; DescribeTaskDefinition shows only the
reference (moto stores it as given) and DescribeTasks never shows the environment. The forms
are AWS's (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-ssm-paramstore.html):

- `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf` for the whole SecretString, or
  with `:json-key:version-stage:version-id` appended, each part optional (`...:password::`);
- an SSM parameter by name (`/app/db/password`) or ARN
  (`arn:aws:ssm:REGION:ACCOUNT:parameter/app/db/password`); SecureString values decrypted.

A failure stops the task before its containers run (stopCode TaskFailedToStart) with the
`ResourceInitializationError: unable to pull secrets or registry auth: ...` reason that the
Fargate agent gives, as users have reported it (AWS does not document each text).
"""

from __future__ import annotations

import json
from typing import Any

from ..motogateway import MotoGateway
from ..protocols import ServiceError
from .models import StartFailure

PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: "
ASM = PREFIX + (
    "execution resource retrieval failed: unable to retrieve secret from asm: "
    "service call has been retried 1 time(s): "
)
SSM = PREFIX + (
    "execution resource retrieval failed: unable to retrieve secrets from ssm: "
    "service call has been retried 1 time(s): "
)
SECRET_ARN_PARTS = 7  # arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf


class SecretResolver:
    """Reads the values that container `secrets` refer to, as the task execution role would."""

    def __init__(self, moto: MotoGateway) -> None:
        self.moto = moto

    def environment(self, secrets: list[dict[str, Any]], region: str) -> dict[str, str]:
        """{name: value} for a container's `secrets`; StartFailure for the first that fails."""
        return {entry["name"]: self.value(entry["valueFrom"], region) for entry in secrets}

    def value(self, value_from: str, region: str) -> str:
        """One `valueFrom` reference's value."""
        parts = value_from.split(":")
        if len(parts) >= SECRET_ARN_PARTS and parts[2] == "secretsmanager":
            return self._secrets_manager(parts, region)
        return self._parameter(value_from, parts, region)

    def _secrets_manager(self, parts: list[str], region: str) -> str:
        """A Secrets Manager reference, optionally with a JSON key, version stage or id."""
        arn = ":".join(parts[:SECRET_ARN_PARTS])
        json_key, stage, version_id = (parts[SECRET_ARN_PARTS:] + ["", "", ""])[:3]
        params: dict[str, Any] = {"SecretId": arn}
        if stage:
            params["VersionStage"] = stage
        if version_id:
            params["VersionId"] = version_id
        try:
            found = self.moto.call("secretsmanager", "GetSecretValue", params, parts[3] or region)
        except ServiceError as error:
            message = error.message
            # moto says only "can't find the specified secret"; AWS names the missing label.
            label_missing = error.code == "ResourceNotFoundException" and stage and not version_id
            if label_missing and self._exists(arn, parts[3] or region):
                message = (
                    f"Secrets Manager can't find the specified secret value for staging label: "
                    f"{stage}"
                )
            raise StartFailure(
                f"{ASM}failed to fetch secret {arn} from secrets manager: {error.code}: {message}"
            ) from error
        value = found.get("SecretString")
        if value is None:
            # The agent reads SecretString only; a binary secret gives it nothing to inject.
            raise StartFailure(f"{ASM}secret {arn} has no SecretString")
        if not json_key:
            return str(value)
        try:
            document = json.loads(value)
        except ValueError as error:
            first = value.lstrip()[:1] or " "
            raise StartFailure(
                f"{ASM}invalid character '{first}' looking for beginning of value"
            ) from error
        if not isinstance(document, dict) or json_key not in document:
            raise StartFailure(
                f"{ASM}retrieved secret from Secrets Manager did not contain json key {json_key}"
            )
        found_value = document[json_key]
        return found_value if isinstance(found_value, str) else json.dumps(found_value)

    def _exists(self, arn: str, region: str) -> bool:
        """True if the secret exists (so a missing value is its version's fault)."""
        try:
            self.moto.call("secretsmanager", "DescribeSecret", {"SecretId": arn}, region)
        except ServiceError:
            return False
        return True

    def _parameter(self, value_from: str, parts: list[str], region: str) -> str:
        """An SSM parameter by name or ARN; SecureString values decrypted."""
        name, parameter_region = value_from, region
        if value_from.startswith("arn:") and len(parts) >= 6 and parts[2] == "ssm":
            resource = ":".join(parts[5:])  # parameter/app/db/password
            name = resource.removeprefix("parameter")
            if name.count("/") == 1:  # parameter/NAME: a name without a path
                name = name[1:]
            parameter_region = parts[3] or region
        try:
            found = self.moto.call(
                "ssm", "GetParameter", {"Name": name, "WithDecryption": True}, parameter_region
            )
        except ServiceError as error:
            if error.code in ("ParameterNotFound", "ValidationException"):
                raise StartFailure(f"{SSM}invalid ssm parameters: {name}") from error
            raise StartFailure(f"{SSM}{error.code}: {error.message}") from error
        return str(found["Parameter"]["Value"])
