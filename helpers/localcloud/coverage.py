"""The coverage page: every AWS operation the course uses and who serves it locally.

`python -m helpers.localcloud coverage` writes docs/coverage.md from two sources: the list
below (each pattern adds the operations its helpers and notebooks call) and the providers
themselves (their operation methods, one-line docstrings, and the "Where the local cloud
differs from AWS" part of their module docstrings). A test keeps the committed page current.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from .config import REPO_ROOT
from .registry import Provider

PAGE = REPO_ROOT / "docs" / "coverage.md"

# Operations the course calls, by botocore service name, with what the course relies on
# when moto serves them (from the project's moto findings).
COURSE_OPERATIONS: dict[str, dict[str, str]] = {
    "apigatewayv2": {
        "CreateApi": "",
        "GetApi": "",
        "GetApis": "",
        "CreateIntegration": "AWS_PROXY defaults IntegrationMethod to POST",
        "GetIntegrations": "",
        "DeleteIntegration": "",
        "CreateRoute": "",
        "GetRoutes": "",
        "UpdateRoute": "",
        "DeleteRoute": "",
        "CreateStage": "AutoDeploy is stored; the local listener always serves the current routes",
        "GetStages": "",
        "UpdateStage": "",
        "DeleteApi": "",
    },
    "cloudwatch": {
        "PutMetricData": "",
        "GetMetricData": "",
        "GetMetricStatistics": "",
        "ListMetrics": "",
    },
    "dynamodb": {
        "CreateTable": "ACTIVE at once; waiters return immediately",
        "DescribeTable": "",
        "PutItem": "",
        "GetItem": "",
        "ListTables": "",
        "ListTagsOfResource": "",
        "DeleteTable": "the response says ACTIVE rather than DELETING; the table is gone at once",
    },
    "ec2": {
        "DescribeVpcs": "the default VPC is built on the first EC2 call",
        "DescribeSubnets": "",
        "CreateSecurityGroup": "",
        "DescribeSecurityGroups": "",
        "AuthorizeSecurityGroupIngress": "",
        "RevokeSecurityGroupIngress": "",
        "DescribeNetworkInterfaces": "a load balancer gets no network interfaces locally",
        "DeleteSecurityGroup": "no DependencyViolation while interfaces or rules refer to it",
    },
    "ecr": {
        "CreateRepository": "stored and tagged; no registry behind it (docker push/pull fail)",
        "DescribeRepositories": "",
        "GetAuthorizationToken": "aws backend only (docker login before a push)",
        "PutImage": "the course passes imageDigest (sha256 of the manifest, AWS's rule); "
        "moving the only tag of an image to a new one deletes the old image (AWS keeps it "
        "untagged)",
        "DescribeImages": "",
        "DeleteRepository": "force=True deletes the images with it",
    },
    "ecs": {
        "CreateCluster": "ACTIVE at once",
        "DescribeClusters": "",
        "DeleteCluster": "",
        "RegisterTaskDefinition": "stored, not validated (e.g. FARGATE with bridge is accepted)",
        "DeregisterTaskDefinition": "",
        "DescribeTaskDefinition": "",
        "ListTaskDefinitions": "",
        "RunTask": "",
        "DescribeTasks": "",
        "ListTasks": "",
        "StopTask": "",
        "CreateService": "",
        "DescribeServices": "",
        "ListServices": "",
        "UpdateService": "",
        "DeleteService": "",
    },
    "elbv2": {
        "CreateLoadBalancer": "active at once",
        "DescribeLoadBalancers": "",
        "SetSubnets": "",
        "SetSecurityGroups": "",
        "ModifyLoadBalancerAttributes": "",
        "CreateTargetGroup": "",
        "DescribeTargetGroups": "",
        "ModifyTargetGroup": "",
        "DescribeTargetGroupAttributes": "",
        "ModifyTargetGroupAttributes": "",
        "CreateListener": "",
        "DescribeListeners": "",
        "ModifyListener": "",
        "DescribeTargetHealth": "",
        "DeleteLoadBalancer": "",
        "DeleteTargetGroup": "ResourceInUse while a listener uses it",
    },
    "iam": {
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
    "lambda": {
        "AddPermission": "stored; the local API invokes functions without checking it",
        "GetPolicy": "",
        "RemovePermission": "",
        "CreateFunction": "Active at once; an image URI is not checked until the first invoke",
        "GetFunction": "",
        "GetFunctionConfiguration": "",
        "ListFunctions": "",
        "UpdateFunctionCode": "the next invoke starts fresh workers",
        "UpdateFunctionConfiguration": "the next invoke starts fresh workers",
        "Invoke": "",
        "DeleteFunction": "",
    },
    "logs": {
        "FilterLogEvents": "plain terms only: JSON and ?term patterns are not applied",
        "DescribeLogGroups": "",
        "DescribeLogStreams": "",
        "DeleteLogGroup": "",
    },
    "rds": {
        "CreateDBSubnetGroup": "stored; no VPC placement is enforced",
        "DescribeDBSubnetGroups": "",
        "DeleteDBSubnetGroup": "",
        "CreateDBCluster": "",
        "DescribeDBClusters": "",
        "ModifyDBCluster": "",
        "DeleteDBCluster": "",
        "CreateDBInstance": "",
        "DescribeDBInstances": "",
        "DeleteDBInstance": "",
        "EnableHttpEndpoint": "",
        "DescribeDBEngineVersions": "",
        "ListTagsForResource": "",
    },
    "rds-data": {
        "ExecuteStatement": "",
        "BatchExecuteStatement": "",
        "BeginTransaction": "",
        "CommitTransaction": "",
        "RollbackTransaction": "",
    },
    "secretsmanager": {
        "GetSecretValue": "",
        "DescribeSecret": "",
        "DeleteSecret": "ForceDeleteWithoutRecovery deletes at once; without it the name stays "
        "taken for the recovery window, as on AWS",
    },
    "sts": {"GetCallerIdentity": "aws backend only (pre-flight)"},
}

_DIFFERENCES = "Where the local cloud differs from AWS:"


def render(providers: list[type[Provider]]) -> str:
    """The coverage page as Markdown."""
    by_service = {p.service: p for p in providers}
    lines = [
        "# Local cloud coverage",
        "",
        "Generated by `python -m helpers.localcloud coverage`; do not edit by hand.",
        "",
        "Every AWS operation the course calls, and what answers it on the local backend:",
        "a course **provider** (real behaviour, documented differences below) or **moto**",
        "(the control plane: resources are stored and described, nothing runs).",
        "",
        "| service | operation | local | notes |",
        "|---|---|---|---|",
    ]
    for service in sorted(COURSE_OPERATIONS):
        provider = by_service.get(service)
        for operation, note in COURSE_OPERATIONS[service].items():
            method = getattr(provider, operation, None) if provider else None
            if method is not None:
                served, note = "provider", _first_line(method)
            else:
                served = "moto"
            lines.append(f"| {service} | {operation} | {served} | {note} |")
    for provider in sorted(providers, key=lambda p: p.service):
        lines += ["", f"## {provider.service}: where the local cloud differs from AWS", ""]
        lines += _differences(provider)
    return "\n".join(lines) + "\n"


def _first_line(obj: object) -> str:
    """The first line of an object's docstring."""
    return (inspect.getdoc(obj) or "").splitlines()[0] if inspect.getdoc(obj) else ""


def _differences(provider: type[Provider]) -> list[str]:
    """The provider module's 'Where the local cloud differs from AWS' list."""
    doc = inspect.getdoc(sys.modules[provider.__module__]) or ""
    if _DIFFERENCES not in doc:
        return ["(the provider's module docstring does not list differences: a bug)"]
    return doc.split(_DIFFERENCES, 1)[1].strip().splitlines()


def write(providers: list[type[Provider]], page: Path = PAGE) -> Path:
    """Write the coverage page and return its path."""
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render(providers))
    return page
