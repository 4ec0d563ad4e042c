"""Aurora MySQL Serverless v2 clusters for the course: get-or-create, Data API, teardown.

`ensure_cluster` (in `clusters`) builds, in the order AWS needs them, a DB subnet group over
the default VPC's subnets, an Aurora MySQL cluster with a Serverless v2 scaling range and an
RDS-managed master password (a Secrets Manager secret), one `db.serverless` writer, and
turns on the Data API. Teardown (in `teardown`) deletes the writer, then the cluster (RDS
deletes the managed secret with it), then the subnet group, waiting in between: on AWS
each step takes minutes. Notebooks call `helpers.aurora.<name>`.
"""

from .app_users import (
    APP_USER_KIND,
    AppUser,
    allow_through_proxy,
    ensure_app_user,
    grant_statements,
    rotate_password,
)
from .clusters import (
    AUTO_PAUSE_SECONDS,
    ENGINE,
    FALLBACK_ENGINE_VERSION,
    INSTANCE_CLASS,
    MASTER_USERNAME,
    MAX_ACU,
    WRITER_SUFFIX,
    ClusterInfo,
    capacity,
    capacity_since,
    check_database_name,
    cluster_identifier,
    cluster_info,
    cluster_info_from,
    ensure_cluster,
    ensure_subnet_group,
    ensure_writer,
    pick_engine_version,
    scaling_configuration,
)
from .lookup import CLUSTER_KIND, CLUSTER_KINDS, INSTANCE_KIND, SUBNET_GROUP_KIND

__all__ = [
    "APP_USER_KIND",
    "AppUser",
    "allow_through_proxy",
    "ensure_app_user",
    "grant_statements",
    "rotate_password",
    "AUTO_PAUSE_SECONDS",
    "CLUSTER_KIND",
    "CLUSTER_KINDS",
    "ENGINE",
    "FALLBACK_ENGINE_VERSION",
    "INSTANCE_CLASS",
    "INSTANCE_KIND",
    "MASTER_USERNAME",
    "MAX_ACU",
    "SUBNET_GROUP_KIND",
    "WRITER_SUFFIX",
    "ClusterInfo",
    "capacity",
    "capacity_since",
    "check_database_name",
    "cluster_identifier",
    "cluster_info",
    "cluster_info_from",
    "ensure_cluster",
    "ensure_subnet_group",
    "ensure_writer",
    "pick_engine_version",
    "scaling_configuration",
]
