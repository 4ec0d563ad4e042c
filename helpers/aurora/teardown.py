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
from ..pacing import Wait
from ..waiting import wait_for
from .lookup import (
    CLUSTER_KIND,
    CLUSTERS,
    INSTANCE_KIND,
    INSTANCES,
    SUBNET_GROUP_KIND,
    SUBNET_GROUPS,
    describe,
)

Finder = Callable[[Lab], Iterable[cleanup.Resource]]


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
    pace: Wait,
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
        pace=pace,
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
        lambda: describe(rds, INSTANCES, identifier),
        "DBInstanceStatus",
        delete,
        what=f"instance {identifier}",
        pace=lab.pace.aurora_instance_deleted,
    )


def _delete_cluster(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a cluster's instances, then the cluster without a final snapshot, and wait."""
    rds = lab.client("rds")
    identifier = resource.identifier
    cluster = describe(rds, CLUSTERS, identifier)
    if cluster is None:
        return
    for member in cluster.get("DBClusterMembers", []):  # normally gone already (deleted first)
        member_id = member["DBInstanceIdentifier"]
        _delete_instance(lab, cleanup.Resource(INSTANCE_KIND, member_id, "", ""))
    _delete_until_gone(
        lab,
        lambda: describe(rds, CLUSTERS, identifier),
        "Status",
        lambda _: rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True),
        what=f"cluster {identifier}",
        pace=lab.pace.aurora_cluster_deleted,
    )


def _delete_subnet_group(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a subnet group, retrying while a just-deleted cluster still holds it."""
    rds = lab.client("rds")
    name = resource.identifier
    _delete_until_gone(
        lab,
        lambda: describe(rds, SUBNET_GROUPS, name),
        "SubnetGroupStatus",
        lambda _: rds.delete_db_subnet_group(DBSubnetGroupName=name),
        what=f"subnet group {name}",
        pace=lab.pace.aurora_subnet_group_deleted,
    )


RESOURCE_KINDS = [
    # What queries the database goes first: functions, services, tasks and proxies.
    cleanup.ResourceKind(
        INSTANCE_KIND,
        _finder(INSTANCE_KIND, *INSTANCES),
        _delete_instance,
        after=("lambda function", "ecs service", "ecs task", "rds proxy", "aurora app user"),
    ),
    # RDS refuses to delete a cluster that still has instances.
    cleanup.ResourceKind(
        CLUSTER_KIND, _finder(CLUSTER_KIND, *CLUSTERS), _delete_cluster, after=(INSTANCE_KIND,)
    ),
    # The cluster holds its subnet group (InvalidDBSubnetGroupStateFault), and so does a
    # PostgreSQL instance (helpers.rds_postgres) made in one.
    cleanup.ResourceKind(
        SUBNET_GROUP_KIND,
        _finder(SUBNET_GROUP_KIND, *SUBNET_GROUPS),
        _delete_subnet_group,
        after=(CLUSTER_KIND, "postgres instance"),
    ),
]
