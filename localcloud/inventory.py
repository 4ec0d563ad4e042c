"""What exists in the local cloud, from its own state: every tagged resource and its tags.

`python -m localcloud status` lists these, so that a student sees what a run left behind
without the course's code: the course tags everything it creates. The list comes from the
Resource Groups Tagging API (`GetResources`) that moto answers across its services, plus IAM
roles, which that API does not cover. ECS clusters and services that were deleted and tasks
that stopped stay visible there (as INACTIVE or STOPPED, as ECS describes them for a while
after), so they are left out: they are records, not resources left behind.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .config import DEFAULT_REGION
from .motogateway import MotoGateway
from .protocols import ServiceError


def tagged_resources(moto: MotoGateway) -> list[dict[str, str]]:
    """One row per tagged resource: its kind, name and tags, sorted."""
    rows = []
    for region in sorted({DEFAULT_REGION, os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)}):
        rows += _tagged_in_region(moto, region)
    return sorted(rows, key=lambda row: (row["kind"], row["name"]))


def _tagged_in_region(moto: MotoGateway, region: str) -> list[dict[str, str]]:
    """Resources that GetResources finds in one region, and the account's tagged IAM roles."""
    rows: list[dict[str, str]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"PaginationToken": token} if token else {}
        page = moto.call("resourcegroupstaggingapi", "GetResources", params, region)
        for item in page.get("ResourceTagMappingList", []):
            if _ended(moto, item["ResourceARN"], region):
                continue
            tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}
            rows.append(_row(item["ResourceARN"], tags))
        token = page.get("PaginationToken", "")
        if not token:
            break
    if region == DEFAULT_REGION:  # IAM is global: list it once
        rows += _tagged_roles(moto, region)
    return rows


def _ended(moto: MotoGateway, arn: str, region: str) -> bool:
    """True for an ECS cluster or service that was deleted, or a task that stopped."""
    kind = arn.split(":", 5)[-1].split("/")[0] if arn.startswith("arn:aws:ecs:") else ""
    try:
        if kind == "cluster":
            found = moto.call("ecs", "DescribeClusters", {"clusters": [arn]}, region)
            return all(c["status"] == "INACTIVE" for c in found["clusters"])
        if kind == "service":
            cluster = arn.split("/")[1]
            params = {"cluster": cluster, "services": [arn]}
            found = moto.call("ecs", "DescribeServices", params, region)
            return all(s["status"] == "INACTIVE" for s in found["services"])
        if kind == "task":
            cluster = arn.split("/")[1]
            found = moto.call("ecs", "DescribeTasks", {"cluster": cluster, "tasks": [arn]}, region)
            return all(t["lastStatus"] == "STOPPED" for t in found["tasks"])
    except ServiceError:
        return True  # gone between the two calls
    return False


def _tagged_roles(moto: MotoGateway, region: str) -> list[dict[str, str]]:
    """IAM roles that carry tags (AWS's managed service roles carry none)."""
    rows = []
    for role in moto.call("iam", "ListRoles", {}, region).get("Roles", []):
        try:
            tags = moto.call("iam", "ListRoleTags", {"RoleName": role["RoleName"]}, region)
        except ServiceError:
            continue
        found = {tag["Key"]: tag["Value"] for tag in tags.get("Tags", [])}
        if found:
            rows.append(_row(role["Arn"], found))
    return rows


def _row(arn: str, tags: dict[str, str]) -> dict[str, str]:
    """A status row: `service:type` and the name or id from the ARN, then the tags."""
    _, _, service, _, _, resource = arn.split(":", 5)
    kind, *name = re.split(r"[:/]", resource, maxsplit=1)  # "function:f", "cluster/c", "bucket"
    return {
        "kind": f"{service}:{kind}" if name else service,
        "name": name[0] if name else resource,
        "tags": ", ".join(f"{key}={value}" for key, value in sorted(tags.items())),
    }
