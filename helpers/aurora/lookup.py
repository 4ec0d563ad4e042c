"""The course's RDS resources by identifier: their kind names and one describe call each."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..cleanup import is_not_found

INSTANCE_KIND = "aurora instance"
CLUSTER_KIND = "aurora cluster"
SUBNET_GROUP_KIND = "rds subnet group"
# What a notebook keeps when later patterns reuse its cluster: teardown(keep=CLUSTER_KINDS).
CLUSTER_KINDS = (INSTANCE_KIND, CLUSTER_KIND, SUBNET_GROUP_KIND)

# (describe operation, result key, identifier field) per resource type
Listing = tuple[str, str, str]
INSTANCES: Listing = ("describe_db_instances", "DBInstances", "DBInstanceIdentifier")
CLUSTERS: Listing = ("describe_db_clusters", "DBClusters", "DBClusterIdentifier")
SUBNET_GROUPS: Listing = ("describe_db_subnet_groups", "DBSubnetGroups", "DBSubnetGroupName")


def describe(rds: Any, listing: Listing, identifier: str) -> dict[str, Any] | None:
    """One cluster, instance or subnet group (see CLUSTERS...), or None if it does not exist."""
    operation, key, id_field = listing
    try:
        return getattr(rds, operation)(**{id_field: identifier})[key][0]
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
