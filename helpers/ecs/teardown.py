"""Teardown of the course's ECS resources: tasks, task definitions, clusters, security group.

On AWS a stopped task's network interface can hold the security group for a while, and a
cluster refuses deletion while tasks are still stopping: both are retried with progress.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from .. import cleanup, ec2, naming
from ..lab import Lab
from .services import SERVICE_KIND, wait_until_inactive
from .task_definitions import TASK_DEFINITION_KIND
from .tasks import CLUSTER_KIND, SECURITY_GROUP_KIND, TASK_KIND, TASK_SG_NAME


def _course_clusters(lab: Lab) -> Iterable[tuple[str, naming.NameParts]]:
    """(cluster ARN, name parts) of every course cluster."""
    for page in lab.client("ecs").get_paginator("list_clusters").paginate():
        for arn in page["clusterArns"]:
            parts = naming.parse_name(arn.rsplit("/", 1)[-1])
            if parts is not None:
                yield arn, parts


def _find_tasks(lab: Lab) -> Iterable[cleanup.Resource]:
    """Tasks still meant to run in course clusters."""
    paginator = lab.client("ecs").get_paginator("list_tasks")
    for cluster_arn, parts in _course_clusters(lab):
        for page in paginator.paginate(cluster=cluster_arn, desiredStatus="RUNNING"):
            for task_arn in page["taskArns"]:
                yield cleanup.Resource(
                    TASK_KIND, task_arn, parts.pattern, parts.run_id, {"cluster": cluster_arn}
                )


def _find_services(lab: Lab) -> Iterable[cleanup.Resource]:
    """Services of course clusters that are not INACTIVE yet."""
    client = lab.client("ecs")
    for cluster_arn, parts in _course_clusters(lab):
        arns = [
            arn
            for page in client.get_paginator("list_services").paginate(cluster=cluster_arn)
            for arn in page["serviceArns"]
        ]
        for start in range(0, len(arns), 10):  # describe_services takes 10 at a time
            found = client.describe_services(cluster=cluster_arn, services=arns[start : start + 10])
            for service in found["services"]:
                if service["status"] != "INACTIVE":
                    yield cleanup.Resource(
                        SERVICE_KIND,
                        service["serviceArn"],
                        parts.pattern,
                        parts.run_id,
                        {"cluster": cluster_arn},
                    )


def _delete_service(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete the service (its tasks drain and stop), then wait until it is INACTIVE."""
    cluster = resource.detail["cluster"]
    lab.client("ecs").delete_service(cluster=cluster, service=resource.identifier, force=True)
    wait_until_inactive(
        lab, cluster, resource.identifier, hint="Run the teardown again to keep waiting."
    )


def _stop_task(lab: Lab, resource: cleanup.Resource) -> None:
    """Stop a task (ECS sends SIGTERM, then SIGKILL after stopTimeout)."""
    lab.client("ecs").stop_task(
        cluster=resource.detail["cluster"], task=resource.identifier, reason="course teardown"
    )


def _active_revisions(client: Any, family: str) -> list[str]:
    """ARNs of the family's ACTIVE revisions (familyPrefix is a prefix: keep exact matches)."""
    pages = client.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, status="ACTIVE"
    )
    return [
        arn
        for page in pages
        for arn in page["taskDefinitionArns"]
        if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
    ]


def _find_task_definitions(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course task definition families with an ACTIVE revision."""
    client = lab.client("ecs")
    paginator = client.get_paginator("list_task_definition_families")
    for page in paginator.paginate(familyPrefix=naming.run_prefix(), status="ACTIVE"):
        for family in page["families"]:
            parts = naming.parse_name(family)
            # moto ignores `status` here, so ask for the family's ACTIVE revisions as well.
            if parts is not None and _active_revisions(client, family):
                yield cleanup.Resource(TASK_DEFINITION_KIND, family, parts.pattern, parts.run_id)


def _delete_task_definitions(lab: Lab, resource: cleanup.Resource) -> None:
    """Deregister every ACTIVE revision of a family, then delete them where ECS can."""
    client = lab.client("ecs")
    arns = _active_revisions(client, resource.identifier)
    for arn in arns:
        client.deregister_task_definition(taskDefinition=arn)
    if not hasattr(client, "delete_task_definitions"):
        return
    for start in range(0, len(arns), 10):  # DeleteTaskDefinitions takes at most 10
        # INACTIVE revisions cost nothing and cannot be run: deleting them is tidiness only.
        with contextlib.suppress(ClientError):
            client.delete_task_definitions(taskDefinitions=arns[start : start + 10])


def _find_clusters(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course clusters that are still ACTIVE."""
    found = list(_course_clusters(lab))
    if not found:
        return []
    client = lab.client("ecs")
    active = set()
    for start in range(0, len(found), 100):
        batch = [arn for arn, _ in found[start : start + 100]]
        for cluster in client.describe_clusters(clusters=batch)["clusters"]:
            if cluster["status"] == "ACTIVE":
                active.add(cluster["clusterArn"])
    return [
        cleanup.Resource(CLUSTER_KIND, arn, parts.pattern, parts.run_id)
        for arn, parts in found
        if arn in active
    ]


def _delete_cluster(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a cluster; on AWS stopping tasks hold it for a while, so retry."""
    cleanup.retry_while(
        lab,
        lambda: lab.client("ecs").delete_cluster(cluster=resource.identifier),
        ("ClusterContainsTasksException", "ClusterContainsServicesException"),
        f"deleting {resource.identifier.rsplit('/', 1)[-1]} (tasks still stopping)",
        300,
    )


def _find_security_groups(lab: Lab) -> Iterable[cleanup.Resource]:
    """Course task security groups (all runs), by name."""
    return cleanup.security_groups_named(lab, SECURITY_GROUP_KIND, TASK_SG_NAME)


def _delete_security_group(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete the group; on AWS the network interfaces of stopped tasks hold it for minutes.

    Rules of other groups that admit this one (e.g. a database's or a proxy's, pattern 22)
    go first: EC2 refuses to delete a group another group's rule names.
    """
    ec2.revoke_references(lab, resource.identifier)
    cleanup.retry_while(
        lab,
        lambda: lab.client("ec2").delete_security_group(GroupId=resource.identifier),
        ("DependencyViolation",),
        f"deleting {resource.identifier} (task network interfaces still attached)",
        600,
    )


# What runs in a cluster (services, their tasks, standalone tasks) goes before what it uses.
_RUNNING = (SERVICE_KIND, TASK_KIND)

RESOURCE_KINDS = [
    cleanup.ResourceKind(SERVICE_KIND, _find_services, _delete_service),
    # A service would replace a stopped task; its own tasks stop with it.
    cleanup.ResourceKind(TASK_KIND, _find_tasks, _stop_task, after=(SERVICE_KIND,)),
    cleanup.ResourceKind(
        TASK_DEFINITION_KIND, _find_task_definitions, _delete_task_definitions, after=_RUNNING
    ),
    # ECS refuses to delete a cluster with services or tasks (ClusterContains...Exception).
    cleanup.ResourceKind(CLUSTER_KIND, _find_clusters, _delete_cluster, after=_RUNNING),
    # The tasks' network interfaces hold their security group.
    cleanup.ResourceKind(
        SECURITY_GROUP_KIND, _find_security_groups, _delete_security_group, after=_RUNNING
    ),
]
