"""IAM roles for the course: least-privilege execution roles, get-or-create, and their teardown.

Each role trusts one service principal and carries one inline policy, `course-least-privilege`,
whose statements the notebook spells out (so students read exactly what the code may do).
Re-running `ensure_role` sets the policy again, so narrowing a statement takes effect.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from . import cleanup, naming
from .lab import Lab

KIND = "iam role"
INLINE_POLICY = "course-least-privilege"
POLICY_VERSION = "2012-10-17"


def trust_policy(service: str) -> dict[str, Any]:
    """A trust policy that lets one AWS service (e.g. lambda.amazonaws.com) assume the role."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def ensure_role(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    service: str,
    statements: list[dict[str, Any]],
    managed_policy_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """Get or create a role that `service` may assume, with exactly these permissions."""
    principal = service if "." in service else f"{service}.amazonaws.com"
    _check_statements(statements)
    role_name = lab.name(pattern, name, 64)
    client = lab.client("iam")
    trust = trust_policy(principal)
    try:
        role = client.get_role(RoleName=role_name)["Role"]
    except client.exceptions.NoSuchEntityException:
        role = client.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"Course pattern {pattern}: {name} ({principal})",
            Tags=naming.tag_list(lab.tags(pattern)),
        )["Role"]
        lab.ledger.record(KIND, role_name, pattern)
    else:
        # A role re-used under a different `service` must not keep trusting the old one.
        if _as_document(role.get("AssumeRolePolicyDocument")) != trust:
            client.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
    _set_inline_policy(client, role_name, statements)
    _set_managed_policies(client, role_name, managed_policy_arns)
    return client.get_role(RoleName=role_name)["Role"]


def lambda_logging_statements(lab: Lab, function_name: str) -> list[dict[str, Any]]:
    """Least privilege for a function to write its own logs, and nothing else's."""
    # AWSLambdaBasicExecutionRole allows these three actions on every log group ("*"); the
    # console's generated policy still allows CreateLogGroup account-wide. Both are narrowed
    # here to the function's own group. CloudWatch Logs documents the group ARN *with* the
    # trailing ":*" as the form to use in IAM policies (it also covers the group's streams),
    # so one resource serves all three actions.
    group_arn = (
        f"arn:aws:logs:{lab.region}:{lab.account_id}:log-group:/aws/lambda/{function_name}:*"
    )
    return [
        {
            "Sid": "OwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": group_arn,
        }
    ]


def vpc_access_statements(
    lab: Lab, subnet_ids: Sequence[str], security_group_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """What a VPC function's role needs for Lambda to manage its network interfaces.

    The actions of AWSLambdaVPCAccessExecutionRole
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html), which grants them
    on "*". Here only the Describe calls keep "*" (EC2 cannot scope them to a resource); an
    interface may only be created in these subnets with these security groups, and only
    network interfaces of this account and region may be changed or deleted.
    """
    ec2 = f"arn:aws:ec2:{lab.region}:{lab.account_id}"
    interfaces = f"{ec2}:network-interface/*"
    return [
        {
            "Sid": "DescribeNetworkForVpcAccess",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "Resource": "*",
        },
        {
            "Sid": "InterfacesInTheseSubnetsAndGroupsOnly",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [
                interfaces,
                *(f"{ec2}:subnet/{subnet}" for subnet in subnet_ids),
                *(f"{ec2}:security-group/{group}" for group in security_group_ids),
            ],
        },
        {
            "Sid": "ManageTheFunctionsInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": interfaces,
        },
    ]


def secret_read_statements(secret_arn: str, kms_key_arn: str | None = None) -> list[dict[str, Any]]:
    """Read one secret; decrypt with its key only if it is a customer managed key.

    A secret encrypted with the AWS managed key `aws/secretsmanager` (RDS's default for a
    managed master password) needs no KMS permission: that key's policy lets Secrets
    Manager use it for any principal of the account allowed to read the secret.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadTheOneSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn,
        }
    ]
    if kms_key_arn:
        region = secret_arn.split(":")[3]
        statements.append(
            {
                "Sid": "DecryptTheSecretOnly",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
                },
            }
        )
    return statements


def invoke_statements(function_arns: Sequence[str]) -> list[dict[str, Any]]:
    """Invoke these functions and no others (a function that calls another one)."""
    return [
        {
            "Sid": "InvokeTheseFunctionsOnly",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": list(function_arns),
        }
    ]


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """Statements wrapped in an IAM policy document."""
    return {"Version": POLICY_VERSION, "Statement": statements}


def inline_policy(lab: Lab, role_name: str) -> dict[str, Any] | None:
    """The role's course policy document as a dict (None if it has none)."""
    client = lab.client("iam")
    try:
        response = client.get_role_policy(RoleName=role_name, PolicyName=INLINE_POLICY)
    except client.exceptions.NoSuchEntityException:
        return None
    return _as_document(response["PolicyDocument"])


def _check_statements(statements: list[dict[str, Any]]) -> None:
    """Fail early, naming the statement, instead of IAM's terse MalformedPolicyDocument."""
    for index, statement in enumerate(statements):
        missing = [k for k in ("Effect", "Action", "Resource") if k not in statement]
        if missing:
            raise ValueError(f"statement {index} has no {', '.join(missing)}: {statement}")


def _set_inline_policy(client: Any, role_name: str, statements: list[dict[str, Any]]) -> None:
    """Make the course policy hold exactly `statements` (IAM rejects an empty Statement list)."""
    if statements:
        client.put_role_policy(
            RoleName=role_name,
            PolicyName=INLINE_POLICY,
            PolicyDocument=json.dumps(policy_document(statements)),
        )
        return
    with contextlib.suppress(client.exceptions.NoSuchEntityException):
        client.delete_role_policy(RoleName=role_name, PolicyName=INLINE_POLICY)


def _set_managed_policies(client: Any, role_name: str, wanted: Sequence[str]) -> None:
    """Attach the wanted managed policies and detach any others, so re-runs can narrow."""
    attached = set(_attached_policy_arns(client, role_name))
    for arn in sorted(set(wanted) - attached):
        client.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    for arn in sorted(attached - set(wanted)):
        client.detach_role_policy(RoleName=role_name, PolicyArn=arn)


def _attached_policy_arns(client: Any, role_name: str) -> list[str]:
    """ARNs of the managed policies attached to a role."""
    pages = client.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return [p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]]


def _as_document(document: Any) -> Any:
    """A policy document as a dict: botocore decodes it, but some paths give a JSON string."""
    if isinstance(document, str):
        return json.loads(unquote(document))
    return document


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course role (all runs); role names say run and pattern."""
    return cleanup.named(KIND, lab, "iam.list_roles", "Roles", "RoleName")


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """IAM refuses to delete a role with policies: detach and delete them first."""
    client = lab.client("iam")
    role_name = resource.identifier
    for arn in _attached_policy_arns(client, role_name):
        client.detach_role_policy(RoleName=role_name, PolicyArn=arn)
    for page in client.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for policy_name in page["PolicyNames"]:
            client.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
    client.delete_role(RoleName=role_name)


# Functions run as their role; task definitions name their execution and task roles.
RESOURCE_KINDS = [
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function", "ecs task definition"))
]
