"""Teardown order, NotFound tolerance and run/pattern filtering, on fake resource kinds."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from helpers import cleanup


class FakeLab:
    """Just what teardown uses of a lab."""

    def __init__(self, run_id: str = "dev") -> None:
        self.run_id = run_id
        self.backend = "local"
        self.recorded: list[tuple[str, str, str]] = []
        self.ledger = self

    def record(self, kind: str, identifier: str, pattern: str, action: str) -> None:
        self.recorded.append((kind, identifier, action))


def _not_found(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "gone"}}, "Delete")


@pytest.fixture
def kinds(monkeypatch):
    """Replace the declared kinds with three fakes and record delete calls in order."""
    deleted: list[str] = []
    inventory = {
        "role": [("scd-dev-16-role", "16", "dev")],
        "function": [("scd-dev-16-fn", "16", "dev"), ("scd-other-16-fn", "16", "other")],
        "api": [("scd-dev-18-api", "18", "dev")],
    }
    behaviour: dict[str, Exception | None] = {}

    def finder(kind):
        return lambda lab: [cleanup.Resource(kind, i, p, r) for i, p, r in inventory[kind]]

    def deleter(lab, resource):
        deleted.append(resource.identifier)
        error = behaviour.get(resource.identifier)
        if error is not None:
            raise error

    declared = {
        name: cleanup.ResourceKind(name, finder(name), deleter, after=after)
        for name, after in (("role", ("function",)), ("function", ("api",)), ("api", ()))
    }
    monkeypatch.setattr(cleanup, "declared_kinds", lambda: declared)
    return deleted, behaviour, declared


def test_deletes_most_dependent_first_and_only_this_run(kinds, capsys):
    deleted, _, _ = kinds
    rows = cleanup.teardown(FakeLab())
    assert deleted == ["scd-dev-18-api", "scd-dev-16-fn", "scd-dev-16-role"]
    assert [r["result"] for r in rows] == ["deleted"] * 3
    printed = capsys.readouterr().out
    assert "scd-dev-16-fn" in printed and "scd-other-16-fn" not in printed


def test_pattern_and_all_runs_filters(kinds):
    deleted, _, _ = kinds
    cleanup.teardown(FakeLab(), pattern="16", quiet=True)
    assert deleted == ["scd-dev-16-fn", "scd-dev-16-role"]
    deleted.clear()
    cleanup.teardown(FakeLab(), all_runs=True, quiet=True)
    assert set(deleted) == {"scd-dev-18-api", "scd-dev-16-fn", "scd-other-16-fn", "scd-dev-16-role"}


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "NoSuchEntity", "DBClusterNotFoundFault", "404"]
)
def test_not_found_counts_as_done(kinds, code):
    deleted, behaviour, _ = kinds
    behaviour["scd-dev-16-fn"] = _not_found(code)
    rows = cleanup.teardown(FakeLab(), quiet=True)
    assert {r["id"]: r["result"] for r in rows}["scd-dev-16-fn"] == "already gone"
    assert deleted[-1] == "scd-dev-16-role"  # later kinds still ran


def test_other_failures_continue_then_raise_with_what_is_left(kinds):
    deleted, behaviour, _ = kinds
    behaviour["scd-dev-18-api"] = _not_found("AccessDenied")
    with pytest.raises(RuntimeError, match="scd-dev-18-api") as raised:
        cleanup.teardown(FakeLab(), quiet=True)
    assert "re-run" in str(raised.value)
    assert deleted == ["scd-dev-18-api", "scd-dev-16-fn", "scd-dev-16-role"]


def test_ledger_records_deletions(kinds):
    lab = FakeLab()
    cleanup.teardown(lab, pattern="18", quiet=True)
    assert lab.recorded == [("api", "scd-dev-18-api", "deleted")]


def test_kept_kinds_stay_and_unknown_kinds_are_refused(kinds):
    deleted, _, _ = kinds
    rows = cleanup.teardown(FakeLab(), keep=["role"], quiet=True)
    assert deleted == ["scd-dev-18-api", "scd-dev-16-fn"]
    assert {r["id"]: r["result"] for r in rows}["scd-dev-16-role"] == "kept"
    with pytest.raises(ValueError, match="unknown resource kinds"):
        cleanup.teardown(FakeLab(), keep=["rolez"], quiet=True)


def test_resources_of_one_kind_come_in_a_stable_order(kinds, monkeypatch):
    deleted, _, declared = kinds
    shuffled = cleanup.ResourceKind(
        "function",
        lambda lab: [cleanup.Resource("function", i, "16", "dev") for i in ("b", "c", "a")],
        declared["function"].delete,
        after=("api",),
    )
    monkeypatch.setitem(declared, "function", shuffled)
    cleanup.teardown(FakeLab(), pattern="16", quiet=True)
    assert deleted == ["a", "b", "c", "scd-dev-16-role"]


def _kind(name: str, *after: str) -> cleanup.ResourceKind:
    return cleanup.ResourceKind(name, lambda lab: [], lambda lab, resource: None, after=after)


def test_order_is_topological_in_waves_and_by_name_within_a_wave():
    kinds = [
        _kind("role", "function", "task definition"),
        _kind("task definition", "service"),
        _kind("function", "api"),
        _kind("service"),
        _kind("api"),
        _kind("bucket", "function"),
    ]
    names = [kind.name for kind in cleanup.teardown_order(kinds)]
    assert names == ["api", "service", "function", "task definition", "bucket", "role"]
    assert [k.name for k in cleanup.teardown_order(reversed(kinds))] == names


def test_order_refuses_unknown_kinds_and_circles():
    with pytest.raises(ValueError, match=r"'function' waits for unknown kinds \['apii'\]"):
        cleanup.teardown_order([_kind("function", "apii")])
    with pytest.raises(ValueError, match=r"in a circle: \['a', 'b'\]"):
        cleanup.teardown_order([_kind("a", "b"), _kind("b", "a"), _kind("c")])


def test_every_declared_kind_has_its_place_in_the_course_teardown_order():
    order = [kind.name for kind in cleanup.teardown_order(cleanup.declared_kinds().values())]
    assert order == [
        "ecs service",
        "event source mapping",
        "http api",
        "rest api",
        "ecs task",
        "lambda function",
        "load balancer",
        "sqs queue",
        "alb security group",
        "aurora app user",
        "dynamodb table",
        "ecs cluster",
        "ecs task definition",
        "ecs task security group",
        "log group",
        "postgres instance",
        "rds proxy",
        "s3 bucket",
        "serverless cache",
        "target group",
        "vpc endpoint",
        "aurora instance",
        "ecr repository",
        "iam role",
        "postgres client security group",
        "postgres security group",
        "rds proxy client security group",
        "rds proxy security group",
        "serverless cache security group",
        "vpc endpoint security group",
        "aurora cluster",
        "rds subnet group",
    ]
