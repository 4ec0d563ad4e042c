"""How every course resource is named and tagged, so teardown can find it without variables.

A name is `<prefix>-<run_id>-<pattern>-<name>`, e.g. `scd-dev-16-fn`; every resource also
carries the tags `course`, `pattern` and `run_id`. Run ids are short and hyphen-free so a
name can be read back into its parts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

COURSE = "serverless-containers-databases"
PREFIX = "scd"
TAG_KEYS = ("course", "pattern", "run_id")

_RUN_ID = re.compile(r"^[a-z0-9]{1,12}$")
_PATTERN = re.compile(r"^\d{2}$")
_NAME = re.compile(rf"^{PREFIX}-([a-z0-9]{{1,12}})-(\d{{2}})-(.+)$")


@dataclass(frozen=True)
class NameParts:
    """A course resource name read back into its parts."""

    run_id: str
    pattern: str
    name: str


def check_run_id(run_id: str) -> str:
    """Return the run id, or raise ValueError saying what is allowed."""
    if not _RUN_ID.match(run_id):
        raise ValueError(
            f"RUN_ID {run_id!r} is not allowed: use 1 to 12 lowercase letters or digits "
            "(no hyphens), e.g. 'dev' or 'alice1'."
        )
    return run_id


def check_pattern(pattern: str) -> str:
    """Return the pattern number, or raise ValueError saying what is allowed."""
    if not _PATTERN.match(pattern):
        raise ValueError(f"pattern {pattern!r} must be two digits, e.g. '16' or '00'.")
    return pattern


def resource_name(run_id: str, pattern: str, name: str, max_length: int = 64) -> str:
    """`scd-<run_id>-<pattern>-<name>`, shortened with a stable hash if AWS limits require."""
    full = f"{PREFIX}-{check_run_id(run_id)}-{check_pattern(pattern)}-{name}".lower()
    if len(full) <= max_length:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:6]
    return f"{full[: max_length - 7].rstrip('-')}-{digest}"


def run_prefix(run_id: str | None = None) -> str:
    """The name prefix shared by one run's resources (or by all course resources)."""
    return f"{PREFIX}-{check_run_id(run_id)}-" if run_id else f"{PREFIX}-"


def parse_name(name: str) -> NameParts | None:
    """Split a course resource name into run id, pattern and name (None if not ours)."""
    match = _NAME.match(name)
    return NameParts(*match.groups()) if match else None


def course_tags(run_id: str, pattern: str) -> dict[str, str]:
    """The three tags every course resource carries."""
    return {"course": COURSE, "pattern": check_pattern(pattern), "run_id": check_run_id(run_id)}


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """Tags in the list-of-pairs form most AWS APIs take (`[{"Key": ..., "Value": ...}]`)."""
    return [{key: k, value: v} for k, v in tags.items()]
