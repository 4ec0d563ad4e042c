"""The services moto serves whole: no course provider, only the operations the course calls.

Each entry says what the course relies on when moto answers (see `docs/coverage.md`). A
service that gains a provider moves its entry to the `SERVICE` of its own package.
"""

from __future__ import annotations

from .services import Service

SERVICES = [
    Service(
        "ec2",
        operations={
            "DescribeVpcs": "the default VPC is built on the first EC2 call",
            "DescribeSubnets": "",
            "CreateSecurityGroup": "",
            "DescribeSecurityGroups": "",
            "AuthorizeSecurityGroupIngress": "",
            "RevokeSecurityGroupIngress": "",
            "DescribeNetworkInterfaces": "a load balancer gets no network interfaces locally; "
            "a VPC function gets some under the AWS timing profile only",
            "DeleteSecurityGroup": "DependencyViolation while a network interface (an ECS "
            "task's; a VPC function's under the AWS timing profile) or another group's rule "
            "uses it",
        },
    ),
    Service(
        "iam",
        operations={
            "CreateRole": "the trust policy is stored, not validated",
            "GetRole": "",
            "ListRoles": "",
            "PutRolePolicy": "stored; IAM policies are never enforced locally",
            "GetRolePolicy": "",
            "ListRolePolicies": "",
            "AttachRolePolicy": "AWS-managed policies are loaded at start",
            "ListAttachedRolePolicies": "",
            "DetachRolePolicy": "",
            "UpdateAssumeRolePolicy": "",
            "DeleteRolePolicy": "",
            "DeleteRole": "",
        },
    ),
    Service(
        "logs",
        operations={
            "FilterLogEvents": "plain terms only: JSON and ?term patterns are not applied",
            "DescribeLogGroups": "",
            "DescribeLogStreams": "",
            "DeleteLogGroup": "",
        },
    ),
    Service(
        "secretsmanager",
        operations={
            "GetSecretValue": "",
            "DescribeSecret": "",
            "DeleteSecret": "ForceDeleteWithoutRecovery deletes at once; without it the name "
            "stays taken for the recovery window, as on AWS",
        },
    ),
    Service(
        "sts",
        operations={
            "GetCallerIdentity": "aws backend only (pre-flight)",
        },
    ),
]
