"""docs/student-policy.json: what a student's own role needs, and no more than the course uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICY = json.loads((REPO / "docs" / "student-policy.json").read_text())
# boto3 client name -> IAM service prefix (clients whose calls need no permission: None).
PREFIXES = {"elbv2": "elasticloadbalancing", "apigatewayv2": "apigateway", "sts": None}
PREFIXES["dynamodbstreams"] = "dynamodb"
MANAGED_POLICY_LIMIT = 6144  # characters without whitespace, per IAM's quotas


def _actions() -> set[str]:
    found: set[str] = set()
    for statement in POLICY["Statement"]:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def _clients_used() -> set[str]:
    """Every boto3 client the course's helpers and notebooks create."""
    sources = [*(REPO / "helpers").rglob("*.py"), *(REPO / "notebooks").glob("*.ipynb")]
    pattern = re.compile(r'client\(\\?"([a-z0-9-]+)\\?"')
    return {name for path in sources for name in pattern.findall(path.read_text())}


def test_every_service_the_course_calls_is_in_the_policy() -> None:
    prefixes = {action.split(":", 1)[0] for action in _actions()}
    clients = _clients_used()
    assert {"lambda", "ecs", "rds", "iam"} <= clients  # the scan itself works
    needed = {PREFIXES.get(client, client) for client in clients} - {None}
    assert needed <= prefixes, f"no permission for {sorted(needed - prefixes)}"


def test_the_policy_is_scoped_to_the_course() -> None:
    text = json.dumps(POLICY)
    assert len(re.sub(r"\s", "", json.dumps(POLICY))) <= MANAGED_POLICY_LIMIT
    assert not re.search(r"\d{12}", text), "no account ids"
    assert POLICY["Version"] == "2012-10-17"
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Sid"]
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert "*" not in actions and not any(a.startswith("iam:*") for a in actions)
        resources = statement["Resource"]
        writes = [a for a in actions if not a.split(":")[1].startswith(("Describe", "List", "Get"))]
        if resources == "*" and writes and "Condition" not in statement:
            # Only calls that AWS does not scope to a resource may be allowed everywhere.
            unscoped = {
                "ecs:RegisterTaskDefinition",
                "ecs:DeregisterTaskDefinition",
                "cloudwatch:PutMetricData",
                "ecr:GetAuthorizationToken",
            }
            assert set(writes) <= unscoped, statement["Sid"]
    roles = next(s for s in POLICY["Statement"] if "iam:PassRole" in s["Action"])
    assert roles["Resource"] == "arn:aws:iam::*:role/scd-*"
    services_with_wildcards = [
        s for s in POLICY["Statement"] if any(a.endswith(":*") for a in s["Action"])
    ]
    for statement in services_with_wildcards:
        assert statement["Resource"] != "*" and all(
            "scd-" in r
            or r.endswith((":db-proxy:*", ":target-group:*", ":event-source-mapping:*"))
            or ":default*" in r
            or "rds!" in r
            for r in statement["Resource"]
        ), statement["Sid"]
