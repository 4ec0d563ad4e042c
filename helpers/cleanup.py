"""Teardown: find course resources by tag and name, delete them in reverse dependency order.

Each service helper registers a `ResourceKind`: how to list the course's resources of that
kind and how to delete one. `teardown` asks every kind, deletes the most dependent layers
first (routing before compute before databases before networking and IAM), treats NotFound
as done, and prints what happened. Nothing depends on Python variables from earlier cells,
so it works after a kernel restart and is safe to run twice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import naming
from .report import text_table

if TYPE_CHECKING:
    from .lab import Lab

# Modules whose import registers resource kinds; each service helper adds itself here.
SERVICE_MODULES = [
    "helpers.apigatewayv2",
    "helpers.aurora",
    "helpers.dynamodb",
    "helpers.ecr",
    "helpers.ecs",
    "helpers.elbv2",
    "helpers.iam",
    "helpers.lambda_",
    "helpers.logs",
    "helpers.s3",
]

# Layers: teardown deletes from the highest layer down. Later kinds pick the layer that
# matches what they depend on (an API before the Lambda it calls, before the database).
LAYER_ROUTING = 90  # API Gateway, load balancers, listeners
LAYER_COMPUTE = 70  # Lambda functions, ECS services and tasks, event source mappings
LAYER_DATA = 50  # DynamoDB tables, databases, proxies, caches, secrets, log groups
LAYER_IMAGES = 30  # ECR repositories
LAYER_FOUNDATION = 10  # security groups, subnet groups, IAM roles

_NOT_FOUND_MARKERS = ("NotFound", "NoSuchEntity", "NoSuch", "DoesNotExist")


@dataclass(frozen=True)
class Resource:
    """One course resource found in the backend."""

    kind: str
    identifier: str
    pattern: str
    run_id: str
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    def row(self) -> dict[str, str]:
        """A table row for status and teardown reports."""
        return {
            "kind": self.kind,
            "id": self.identifier,
            "pattern": self.pattern,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class ResourceKind:
    """How to find and delete one type of resource."""

    name: str
    layer: int
    find: Callable[[Lab], Iterable[Resource]]
    delete: Callable[[Lab, Resource], None]


KINDS: dict[str, ResourceKind] = {}


def register(kind: ResourceKind) -> ResourceKind:
    """Add (or replace) a resource kind that teardown knows about."""
    KINDS[kind.name] = kind
    return kind


def named(
    kind: str, lab: Lab, operation: str, items: str, name_key: str, arn_key: str | None = None
) -> Iterator[Resource]:
    """The course's resources among what a paginated list call returns, recognised by name.

    With `arn_key`, each resource keeps that field as detail["arn"] (for deletes by ARN).
    """
    service, method = operation.split(".")
    for page in lab.client(service).get_paginator(method).paginate():
        for item in page[items]:
            name = item if isinstance(item, str) else item[name_key]
            parts = naming.parse_name(name)
            if parts is not None:
                detail = {"arn": item[arn_key]} if arn_key else {}
                yield Resource(kind, name, parts.pattern, parts.run_id, detail)


def security_groups_named(lab: Lab, kind: str, name: str) -> Iterator[Resource]:
    """Course security groups (all runs) whose name ends in `-<name>`."""
    paginator = lab.client("ec2").get_paginator("describe_security_groups")
    pattern = f"{naming.run_prefix()}*-{name}"
    for page in paginator.paginate(Filters=[{"Name": "group-name", "Values": [pattern]}]):
        for group in page["SecurityGroups"]:
            parts = naming.parse_name(group["GroupName"])
            if parts is not None and parts.name == name:
                yield Resource(kind, group["GroupId"], parts.pattern, parts.run_id)


def is_not_found(error: Exception) -> bool:
    """True if an AWS error means 'it is already gone'."""
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    return any(marker in code for marker in _NOT_FOUND_MARKERS) or code == "404"


def retry_while(
    lab: Lab, call: Callable[[], Any], codes: tuple[str, ...], what: str, timeout: float
) -> None:
    """Call `call` until AWS stops answering with one of `codes` (something still holds it)."""
    from .waiting import wait_for

    def attempt() -> bool:
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in codes:
                return False
            raise
        return True

    wait_for(
        attempt,
        what=what,
        timeout=timeout,
        estimate=1 if lab.is_local else 60,
        interval=0.5 if lab.is_local else 10.0,
    )


def find_resources(
    lab: Lab, pattern: str | None = None, *, all_runs: bool = False
) -> list[Resource]:
    """Course resources of this run (or of every run), optionally of one pattern only."""
    _load_kinds()
    found: list[Resource] = []
    for kind in sorted(KINDS.values(), key=lambda k: -k.layer):
        # Sorted within a kind: list APIs return no stable order, and reports must not vary.
        for resource in sorted(kind.find(lab), key=lambda r: r.identifier):
            if not all_runs and resource.run_id != lab.run_id:
                continue
            if pattern is not None and resource.pattern != pattern:
                continue
            found.append(resource)
    return found


def teardown(
    lab: Lab,
    pattern: str | None = None,
    *,
    all_runs: bool = False,
    keep: Iterable[str] = (),
    quiet: bool = False,
) -> list[dict[str, str]]:
    """Delete course resources, most dependent first; print and return what happened.

    `keep` names resource kinds to leave in place, e.g. a database later notebooks reuse.
    """
    rows: list[dict[str, str]] = []
    failures: list[str] = []
    kept = set(keep)
    _load_kinds()
    unknown = kept - set(KINDS)
    if unknown:
        raise ValueError(f"keep: unknown resource kinds {sorted(unknown)}; known: {sorted(KINDS)}")
    for resource in find_resources(lab, pattern, all_runs=all_runs):
        if resource.kind in kept:
            rows.append({**resource.row(), "result": "kept"})
            continue
        status = _delete(lab, resource)
        rows.append({**resource.row(), "result": status})
        if status.startswith("failed"):
            failures.append(f"{resource.kind} {resource.identifier}: {status}")
        else:
            lab.ledger.record(resource.kind, resource.identifier, resource.pattern, "deleted")
    if not quiet:
        scope = f"pattern {pattern}" if pattern else "all patterns"
        runs = "every run" if all_runs else f"run {lab.run_id}"
        print(f"teardown ({lab.backend}, {scope}, {runs}):")
        print(
            text_table(rows, ["kind", "id", "pattern", "result"]) if rows else "nothing to delete"
        )
    if failures:
        raise RuntimeError(
            "teardown could not delete everything (re-run it to retry what is left):\n  "
            + "\n  ".join(failures)
        )
    return rows


def _delete(lab: Lab, resource: Resource) -> str:
    """Delete one resource; NotFound counts as done."""
    try:
        KINDS[resource.kind].delete(lab, resource)
    except Exception as error:
        if is_not_found(error):
            return "already gone"
        return f"failed: {error}"
    return "deleted"


def _load_kinds() -> None:
    """Import the service helper modules so that their kinds are registered."""
    for module in SERVICE_MODULES:
        importlib.import_module(module)
