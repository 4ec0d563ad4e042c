"""Teardown: find course resources by name, delete them in their declared dependency order.

Each service module declares its resource kinds next to its own code, in a module-level
`RESOURCE_KINDS` list: how to list the course's resources of that kind, how to delete one,
and which kinds must be deleted before it (`after`: an API before the Lambda function it
calls, a function before the role it runs as). `teardown` collects the kinds of every
module (`helpers.catalog`), deletes in a topological order of those declarations, treats
NotFound as done, and prints what happened. Nothing depends on Python variables from
earlier cells, so it works after a kernel restart and is safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import catalog, naming
from .report import text_table
from .waiting import wait_for

if TYPE_CHECKING:
    from .lab import Lab

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
    """How to find and delete one type of resource, and which kinds must be deleted first."""

    name: str
    find: Callable[[Lab], Iterable[Resource]]
    delete: Callable[[Lab, Resource], None]
    after: tuple[str, ...] = ()  # kinds whose resources use this one: they go before it


def declared_kinds() -> dict[str, ResourceKind]:
    """Every kind the helpers' modules declare in `RESOURCE_KINDS`, by name."""
    kinds: dict[str, ResourceKind] = {}
    for kind in catalog.declared("RESOURCE_KINDS"):
        if kind.name in kinds:
            raise ValueError(f"resource kind {kind.name!r} is declared twice")
        kinds[kind.name] = kind
    return kinds


def teardown_order(kinds: Iterable[ResourceKind]) -> list[ResourceKind]:
    """The kinds in deletion order: each after every kind it names in `after`.

    Kinds are taken in waves: first those that wait for nothing, then those that wait only
    for the first wave, and so on; by name within a wave, so reports do not vary.
    """
    by_name = {kind.name: kind for kind in kinds}
    for kind in by_name.values():
        unknown = sorted(set(kind.after) - set(by_name))
        if unknown:
            raise ValueError(f"resource kind {kind.name!r} waits for unknown kinds {unknown}")
    ordered: list[ResourceKind] = []
    done: set[str] = set()
    while len(done) < len(by_name):
        wave = sorted(
            name
            for name, kind in by_name.items()
            if name not in done and done.issuperset(kind.after)
        )
        if not wave:
            stuck = sorted(set(by_name) - done)
            raise ValueError(f"resource kinds wait for each other in a circle: {stuck}")
        ordered += [by_name[name] for name in wave]
        done.update(wave)
    return ordered


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

    def attempt() -> bool:
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in codes:
                return False
            raise
        return True

    wait_for(attempt, what=what, timeout=timeout, pace=lab.pace.resource_released)


def find_resources(
    lab: Lab, pattern: str | None = None, *, all_runs: bool = False
) -> list[Resource]:
    """Course resources of this run (or of every run), optionally of one pattern only.

    They come in teardown order: by kind, as `teardown_order` sorts the kinds.
    """
    found: list[Resource] = []
    for kind in teardown_order(declared_kinds().values()):
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
    kinds = declared_kinds()
    unknown = kept - set(kinds)
    if unknown:
        raise ValueError(f"keep: unknown resource kinds {sorted(unknown)}; known: {sorted(kinds)}")
    for resource in find_resources(lab, pattern, all_runs=all_runs):
        if resource.kind in kept:
            rows.append({**resource.row(), "result": "kept"})
            continue
        status = _delete(lab, kinds[resource.kind], resource)
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


def _delete(lab: Lab, kind: ResourceKind, resource: Resource) -> str:
    """Delete one resource; NotFound counts as done."""
    try:
        kind.delete(lab, resource)
    except Exception as error:
        if is_not_found(error):
            return "already gone"
        return f"failed: {error}"
    return "deleted"
