"""Does a function's resource-based policy let API Gateway invoke it from this source ARN?

API Gateway invokes a proxy integration's function as the service principal
`apigateway.amazonaws.com`, naming the method's execute-api ARN as the source; the function's
policy (Lambda AddPermission) must allow `lambda:InvokeFunction` for it
(https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html#apigateway-permissions).
Without such a statement the client gets 500 "Internal server error".
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..motogateway import MotoGateway

PRINCIPAL = "apigateway.amazonaws.com"
_ACTIONS = frozenset({"lambda:invokefunction", "lambda:*", "*"})


def allows(
    statements: Iterable[Mapping[str, Any]], function_arn: str, source: str, account_id: str
) -> bool:
    """True when an Allow statement (and no Deny) covers API Gateway invoking from `source`."""
    allowed = False
    for statement in statements:
        if not _applies(statement, function_arn, source, account_id):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


class PolicyReader:
    """Reads a function's policy statements from moto, cached until its revision changes."""

    def __init__(self, moto: MotoGateway) -> None:
        self.moto = moto
        self._decisions: dict[tuple[str, str, str], bool] = {}
        self._lock = threading.Lock()

    def allows(self, function_arn: str, qualifier: str | None, source: str) -> bool:
        """Whether the function (as moto has it now) lets API Gateway invoke it from `source`."""
        parts = function_arn.split(":")
        region, account_id = parts[3], parts[4]
        with self.moto.backend("lambda", account_id, region) as functions:
            try:
                function = functions.get_function(function_arn, qualifier)
            except Exception:  # moto's own not-found error: nothing can allow the call
                return False
            policy = function.policy
            revision = policy.revision
            key = (function_arn, source, revision)
            with self._lock:
                known = self._decisions.get(key)
            if known is not None:
                return known
            statements = [dict(s) for s in policy.statements]
        decision = allows(statements, function_arn, source, account_id)
        with self._lock:
            if len(self._decisions) > 10_000:  # bounded: revisions change with every edit
                self._decisions.clear()
            self._decisions[key] = decision
        return decision


def _applies(statement: Mapping[str, Any], function_arn: str, source: str, account_id: str) -> bool:
    """True when the statement names API Gateway, the invoke action, this function and source."""
    if not _names_principal(statement.get("Principal")):
        return False
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else list(actions or [])
    if not any(str(a).lower() in _ACTIONS for a in actions):
        return False
    resources = statement.get("Resource")
    resources = [resources] if isinstance(resources, str) else list(resources or ["*"])
    if not any(_like(function_arn, r) or _like(f"{function_arn}:*", r) for r in resources):
        return False
    return _conditions_hold(statement.get("Condition") or {}, source, account_id)


def _names_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        services = principal.get("Service")
        services = [services] if isinstance(services, str) else list(services or [])
        return PRINCIPAL in services or principal.get("AWS") == "*"
    return False


def _conditions_hold(conditions: Mapping[str, Any], source: str, account_id: str) -> bool:
    """AWS:SourceArn (ArnLike/ArnEquals/StringLike/StringEquals) and AWS:SourceAccount."""
    facts = {"aws:sourcearn": source, "aws:sourceaccount": account_id}
    for operator, tests in conditions.items():
        for key, expected in (tests or {}).items():
            actual = facts.get(key.lower())
            if actual is None:
                return False  # a condition on a key API Gateway does not send
            values = [expected] if isinstance(expected, str) else list(expected)
            like = operator.lower() in ("arnlike", "stringlike")
            if not any(_like(actual, v) if like else actual == v for v in values):
                return False
    return True


def _like(value: str, pattern: str) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` one character, case-sensitive."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
