"""Aurora clusters on the live local cloud: get-or-create, teardown order, Data API round trip.

`test_data_api_round_trip` runs on the local cloud's RDS provider (a real MariaDB per
cluster, EnableHttpEndpoint, Endpoint 127.0.0.1) and its Data API provider (real SQL).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from polling import wait_until

import helpers
from helpers import aurora
from helpers.rds_data import DataApi

pytestmark = pytest.mark.engines
PATTERN = "19"


@pytest.fixture
def lab19(lab: helpers.Lab) -> Iterator[helpers.Lab]:
    """A lab whose pattern-19 resources are torn down after the test, even when it fails."""
    yield lab
    helpers.cleanup.teardown(lab, pattern=PATTERN, quiet=True)


def _unique(prefix: str) -> str:
    """A short name of its own per test."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def test_ensure_cluster_is_idempotent_and_teardown_deletes_in_order(lab19):
    name = _unique("db")
    first = aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0.5, max_acu=2, data_api=False)
    again = aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0.5, max_acu=2, data_api=False)
    assert first == again
    identifier = f"scd-pytest-19-{name}"
    assert first.identifier == identifier and first.writer == f"{identifier}-writer"
    assert first.arn.startswith("arn:aws:rds:") and first.arn.endswith(f":cluster:{identifier}")
    assert first.secret_arn and first.secret_arn.startswith("arn:aws:secretsmanager:")
    assert (first.database, first.min_acu, first.max_acu) == ("labdb", 0.5, 2.0)
    assert first.engine_version.startswith("8.0.mysql_aurora.3.")
    assert aurora.cluster_info(lab19, PATTERN, name) == first
    assert aurora.cluster_info(lab19, PATTERN, _unique("none")) is None

    rds = lab19.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    assert cluster["Engine"] == "aurora-mysql" and cluster["StorageEncrypted"] is True
    assert cluster["DeletionProtection"] is False
    assert cluster["DBSubnetGroup"] == f"{identifier}-subnets"
    assert {"Key": "pattern", "Value": "19"} in cluster["TagList"]
    writer = rds.describe_db_instances(DBInstanceIdentifier=first.writer)["DBInstances"][0]
    assert writer["DBInstanceClass"] == "db.serverless"
    assert writer["PubliclyAccessible"] is False
    assert writer["DBClusterIdentifier"] == identifier
    group = rds.describe_db_subnet_groups(DBSubnetGroupName=f"{identifier}-subnets")
    assert len(group["DBSubnetGroups"][0]["Subnets"]) >= 2
    created = [e for e in lab19.ledger.entries() if name in e["id"] and e["action"] == "created"]
    assert len(created) == 3  # subnet group, cluster, writer: once each

    rows = helpers.cleanup.teardown(lab19, pattern=PATTERN, quiet=True)
    ours = [row for row in rows if name in row["id"]]
    assert [row["kind"] for row in ours] == [
        aurora.INSTANCE_KIND,
        aurora.CLUSTER_KIND,
        aurora.SUBNET_GROUP_KIND,
    ]
    assert [row["result"] for row in ours] == ["deleted"] * 3
    assert aurora.cluster_info(lab19, PATTERN, name) is None
    assert helpers.cleanup.teardown(lab19, pattern=PATTERN, quiet=True) == []


def test_ensure_cluster_fixes_a_changed_scaling_range(lab19):
    name = _unique("db")
    aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0.5, max_acu=2, data_api=False)
    changed = aurora.ensure_cluster(
        lab19, PATTERN, name, min_acu=0, max_acu=4, seconds_until_auto_pause=600, data_api=False
    )
    assert (changed.min_acu, changed.max_acu, changed.seconds_until_auto_pause) == (0, 4, 600)
    updates = [e["action"] for e in lab19.ledger.entries() if e["id"].endswith(name)]
    assert "updated scaling" in updates
    with pytest.raises(ValueError, match="cannot be renamed"):
        aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0, max_acu=4, database="other")


def test_data_api_round_trip(lab19):
    name = _unique("db")
    info = aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0, max_acu=2)
    assert info.endpoint == "127.0.0.1" and info.port > 0
    assert info.data_api is True
    cluster = lab19.client("rds").describe_db_clusters(DBClusterIdentifier=info.identifier)
    assert cluster["DBClusters"][0]["HttpEndpointEnabled"] is True
    assert aurora.ensure_cluster(lab19, PATTERN, name, min_acu=0, max_acu=2) == info

    api = DataApi.for_cluster(lab19, info)
    api.execute(
        "CREATE TABLE everything ("
        " id BIGINT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(50), b BOOLEAN, i BIGINT,"
        " f DOUBLE, d DECIMAL(10, 2), day DATE, tm TIME(3), ts DATETIME(3), u CHAR(36),"
        " j JSON, bin BLOB, nothing VARCHAR(10) NULL)"
    )
    row = {
        "s": "héllo",
        "b": True,
        "i": 2**40,
        "f": 0.25,
        "d": Decimal("12.34"),
        "day": dt.date(2026, 1, 2),
        "tm": dt.time(3, 4, 5, 678_000),
        "ts": dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC),
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "j": {"tags": ["a", "b"], "n": 1},
        "bin": b"\x00\x01\xff",
        "nothing": None,
    }
    columns = ", ".join(row)
    values = ", ".join(f":{column}" for column in row)
    inserted = api.execute(f"INSERT INTO everything ({columns}) VALUES ({values})", row)
    assert inserted["numberOfRecordsUpdated"] == 1
    assert inserted["generatedFields"] == [{"longValue": 1}]

    select = f"SELECT {columns} FROM everything WHERE id = :id"
    records = api.query(select, {"id": 1}, as_json=False).iloc[0]
    as_json = api.query(select, {"id": 1}).iloc[0]
    for result in (records, as_json):
        assert result["s"] == "héllo"
        assert bool(result["b"]) is True  # TINYINT(1): booleanValue or longValue 1
        assert int(result["i"]) == 2**40
        assert float(result["f"]) == 0.25
        assert Decimal(str(result["d"])) == Decimal("12.34")
        assert result["day"] == "2026-01-02"
        assert result["tm"] == "03:04:05.678"
        assert result["ts"] == "2026-01-02 03:04:05.678"
        assert result["u"] == "12345678-1234-5678-1234-567812345678"
        stored_json = result["j"]
        assert (json.loads(stored_json) if isinstance(stored_json, str) else stored_json) == row[
            "j"
        ]
        assert result["nothing"] is None
    assert records["bin"] == b"\x00\x01\xff"

    api.batch("INSERT INTO everything (s) VALUES (:s)", [{"s": "batch-1"}, {"s": "batch-2"}])
    with api.transaction():
        api.execute("INSERT INTO everything (s) VALUES (:s)", {"s": "committed"})
    with pytest.raises(RuntimeError, match="on purpose"), api.transaction():
        api.execute("INSERT INTO everything (s) VALUES (:s)", {"s": "rolled-back"})
        raise RuntimeError("on purpose")
    names = api.query("SELECT s FROM everything WHERE id > 1 ORDER BY id")["s"].tolist()
    assert names == ["batch-1", "batch-2", "committed"]

    rows = helpers.cleanup.teardown(lab19, pattern=PATTERN, quiet=True)
    assert [row["result"] for row in rows if name in row["id"]] == ["deleted"] * 3


def test_capacity_reads_the_clusters_metric_newest_window_and_since_a_time(lab19):
    started = dt.datetime.now(dt.UTC)
    cluster = aurora.ensure_cluster(lab19, PATTERN, _unique("cap"), min_acu=0.5, max_acu=2)
    # The local cloud publishes capacity every second; three seconds of it are there soon.
    highest = wait_until(
        lambda: aurora.capacity(lab19, cluster, over_seconds=3),
        what="three seconds of capacity in CloudWatch",
        timeout=30,
    )
    assert 0.5 <= highest <= 2.0
    since = aurora.capacity_since(lab19, cluster, started)
    stamps = list(since)
    assert stamps == sorted(stamps) and stamps[0] >= started.replace(microsecond=0)
    assert all(0.5 <= value <= 2.0 for value in since.values())
    assert aurora.capacity(lab19, cluster, over_seconds=3600) is None  # not that much data yet
