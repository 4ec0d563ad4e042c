"""Aurora clusters and instances take AWS's time to create and delete (AWS timing profile).

Under the profile (`localcloud/timing.py`) a local cluster is `creating` for a while after
CreateDBCluster and one of its instances `creating` after CreateDBInstance (no Endpoint yet);
a deleted one is described as `deleting` until its deletion time has passed, then
DBClusterNotFoundFault / DBInstanceNotFound. While a cluster is not `available`,
ModifyDBCluster, EnableHttpEndpoint, DisableHttpEndpoint and DeleteDBCluster answer
InvalidDBClusterStateFault (its message's wording is [unconfirmed]), and the Data API sees
only the instances already created. With the profile off nothing here applies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..protocols import ServiceError
from ..registry import RequestContext
from ..timing import Lifecycle, TimingProfile

Key = tuple[str, str, str]  # (account, region, lowercase identifier)


def _key(context: RequestContext, identifier: str) -> Key:
    return (context.account_id, context.region, identifier.lower())


class RdsLifecycles:
    """Creation and deletion times of the local Aurora clusters and their instances."""

    def __init__(self, timing: TimingProfile) -> None:
        self.clusters = Lifecycle(timing, "aurora cluster")
        self.instances = Lifecycle(timing, "aurora instance")

    # ----- creation ---------------------------------------------------------------------

    def cluster_created(self, context: RequestContext, identifier: str) -> None:
        self.clusters.created(_key(context, identifier))

    def instance_created(self, context: RequestContext, identifier: str) -> None:
        self.instances.created(_key(context, identifier))

    def check_cluster_available(self, context: RequestContext, identifier: str) -> None:
        """Refuse a change to a cluster that is still being created, as RDS does."""
        if self.clusters.creating(_key(context, identifier)):
            raise ServiceError(
                "InvalidDBClusterStateFault",
                f"DB cluster {identifier.lower()} is not currently in the available state.",
            )

    def patch_cluster(self, context: RequestContext, cluster: dict[str, Any]) -> None:
        if self.clusters.creating(_key(context, cluster["DBClusterIdentifier"])):
            cluster["Status"] = "creating"

    def patch_instance(self, context: RequestContext, instance: dict[str, Any]) -> None:
        if self.instances.creating(_key(context, instance["DBInstanceIdentifier"])):
            instance["DBInstanceStatus"] = "creating"
            instance.pop("Endpoint", None)  # RDS gives an instance its endpoint when it is up

    def cluster_creating(self, region: str, account_id: str, identifier: str) -> bool:
        return self.clusters.creating((account_id, region, identifier.lower()))

    def ready_instances(
        self, region: str, account_id: str, ids: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The instances among `ids` that are no longer being created."""
        return tuple(i for i in ids if not self.instances.creating((account_id, region, i.lower())))

    # ----- deletion ---------------------------------------------------------------------

    def cluster_deleted(self, context: RequestContext, cluster: dict[str, Any]) -> None:
        shown = {**copy.deepcopy(cluster), "Status": "deleting"}
        self.clusters.deleted(_key(context, cluster["DBClusterIdentifier"]), shown)

    def instance_deleted(self, context: RequestContext, instance: dict[str, Any]) -> None:
        shown = {**copy.deepcopy(instance), "DBInstanceStatus": "deleting"}
        self.instances.deleted(_key(context, instance["DBInstanceIdentifier"]), shown)

    def describe_clusters(
        self, params: dict[str, Any], context: RequestContext, call: Callable[[], Any]
    ) -> Any:
        """moto's DescribeDBClusters, plus the clusters still being deleted."""
        return _describe(self.clusters, params, context, call, "DBClusterIdentifier", "DBClusters")

    def describe_instances(
        self, params: dict[str, Any], context: RequestContext, call: Callable[[], Any]
    ) -> Any:
        """moto's DescribeDBInstances, plus the instances still being deleted."""
        return _describe(
            self.instances, params, context, call, "DBInstanceIdentifier", "DBInstances"
        )

    def clear(self) -> None:
        self.clusters.clear()
        self.instances.clear()


def _describe(
    lifecycle: Lifecycle,
    params: dict[str, Any],
    context: RequestContext,
    call: Callable[[], Any],
    id_field: str,
    list_key: str,
) -> Any:
    """A describe whose answer keeps the resources still being deleted, until they are gone."""
    identifier = params.get(id_field) or ""
    if identifier.startswith("arn:"):
        identifier = identifier.rsplit(":", 1)[-1]
    try:
        result = call()
    except ServiceError as error:
        if identifier and "NotFound" in error.code:
            shown = lifecycle.deleting(_key(context, identifier))
            if isinstance(shown, dict):
                return {list_key: [copy.deepcopy(shown)]}
        raise
    if not identifier and not params.get("Filters"):
        listed = {r.get(id_field, "").lower() for r in result.get(list_key, [])}
        for (account, region, name), shown in lifecycle.still_deleting().items():
            here = (account, region) == (context.account_id, context.region)
            if here and name not in listed and isinstance(shown, dict):
                result.setdefault(list_key, []).append(copy.deepcopy(shown))
    return result
