"""The Aurora cluster each database benchmark starts from: Serverless v2, one writer."""

from __future__ import annotations

from typing import Any


def bench_cluster(lab: Any, identifier: str, *, data_api: bool = False) -> dict[str, Any]:
    """A local Aurora MySQL cluster with a writer and database `bench`; its description."""
    rds = lab.client("rds")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        DatabaseName="bench",
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier=f"{identifier}-writer",
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        DBInstanceClass="db.serverless",
    )
    if data_api:
        rds.enable_http_endpoint(ResourceArn=cluster["DBClusterArn"])
    return cluster
