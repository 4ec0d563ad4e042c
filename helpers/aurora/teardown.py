"""Teardown of Aurora instances, clusters and subnet groups: slow on AWS, so it waits.

Each delete treats "deleting" and busy states as progress and waits until the resource is
gone, because on AWS an instance takes minutes to delete and its cluster cannot go first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from .. import cleanup, naming
from ..lab import Lab
from ..waiting import wait_for
from . import (
    _CLUSTERS,
    _INSTANCES,
    _SUBNET_GROUPS,
    CLUSTER_KIND,
    INSTANCE_KIND,
    SUBNET_GROUP_KIND,
    Finder,
    _describe,
    _pace,
)


def _finder(kind: str, operation: str, key: str, id_field: str) -> Finder:
    """A teardown finder: course-named RDS resources of one describe call (all runs)."""

    def find(lab: Lab) -> Iterable[cleanup.Resource]:
        for page in lab.client("rds").get_paginator(operation).paginate():
            for item in page[key]:
                parts = naming.parse_name(item[id_field])
                if parts is not None and item.get("Engine", "aurora").startswith("aurora"):
                    yield cleanup.Resource(kind, item[id_field], parts.pattern, parts.run_id)

    return find


def _is_state_fault(error: Exception) -> bool:
    """True for 'not in a state that allows this' errors (busy, or already being deleted)."""
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    return code.startswith("Invalid") and code.endswith(("StateFault", "State"))


def _delete_until_gone(
    lab: Lab,
    describe: Callable[[], dict[str, Any] | None],
    status_key: str,
    delete: Callable[[dict[str, Any]], Any],
    *,
    what: str,
    aws_estimate: float,
) -> None:
    """Delete, treating 'deleting' and busy states as progress, and wait until it is gone."""

    def check() -> bool:
        resource = describe()
        if resource is None:
            return True
        if resource.get(status_key) == "deleting":
            return False
        try:
            delete(resource)
        except ClientError as error:
            if cleanup.is_not_found(error):
                return True
            if not _is_state_fault(error):  # busy (creating, modifying): try again later
                raise
            return False
        return describe() is None  # gone at once locally; "deleting" for minutes on AWS

    wait_for(
        check,
        what=f"deleting {what}",
        hint="AWS is still deleting it: re-run the teardown to keep waiting.",
        **_pace(lab, aws_estimate),
    )


def _delete_instance(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete an Aurora instance (no final snapshot: that is the cluster's) and wait."""
    rds = lab.client("rds")
    identifier = resource.identifier

    def delete(instance: dict[str, Any]) -> None:
        if instance.get("DBInstanceStatus") == "stopped":  # start the cluster, delete later
            rds.start_db_cluster(DBClusterIdentifier=instance["DBClusterIdentifier"])
        else:
            rds.delete_db_instance(DBInstanceIdentifier=identifier)

    _delete_until_gone(
        lab,
        lambda: _describe(rds, _INSTANCES, identifier),
        "DBInstanceStatus",
        delete,
        what=f"instance {identifier}",
        aws_estimate=420,
    )


def _delete_cluster(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a cluster's instances, then the cluster without a final snapshot, and wait."""
    rds = lab.client("rds")
    identifier = resource.identifier
    cluster = _describe(rds, _CLUSTERS, identifier)
    if cluster is None:
        return
    for member in cluster.get("DBClusterMembers", []):  # normally gone already (higher layer)
        member_id = member["DBInstanceIdentifier"]
        _delete_instance(lab, cleanup.Resource(INSTANCE_KIND, member_id, "", ""))
    _delete_until_gone(
        lab,
        lambda: _describe(rds, _CLUSTERS, identifier),
        "Status",
        lambda _: rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True),
        what=f"cluster {identifier}",
        aws_estimate=180,
    )


def _delete_subnet_group(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a subnet group, retrying while a just-deleted cluster still holds it."""
    rds = lab.client("rds")
    name = resource.identifier
    _delete_until_gone(
        lab,
        lambda: _describe(rds, _SUBNET_GROUPS, name),
        "SubnetGroupStatus",
        lambda _: rds.delete_db_subnet_group(DBSubnetGroupName=name),
        what=f"subnet group {name}",
        aws_estimate=30,
    )


for _kind, _layer, _listing, _delete in (
    (INSTANCE_KIND, cleanup.LAYER_DATA + 2, _INSTANCES, _delete_instance),
    (CLUSTER_KIND, cleanup.LAYER_DATA + 1, _CLUSTERS, _delete_cluster),
    (SUBNET_GROUP_KIND, cleanup.LAYER_FOUNDATION + 5, _SUBNET_GROUPS, _delete_subnet_group),
):
    cleanup.register(cleanup.ResourceKind(_kind, _layer, _finder(_kind, *_listing), _delete))
