"""The capacity monitor against a real MariaDB server: real load raises the published ACUs."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pymysql
import pytest
from polling import wait_until

from localcloud.metrics.store import MetricStore
from localcloud.rds import capacity as cap

pytestmark = pytest.mark.engines
PASSWORD = "capacity-test-pw"


def busy_client(port: int, stop: threading.Event) -> None:
    """Run small queries back to back until told to stop."""
    conn = pymysql.connect(
        host="127.0.0.1", port=port, user="admin", password=PASSWORD, autocommit=True
    )
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT COUNT(*) FROM information_schema.tables")
                cur.fetchall()
    finally:
        conn.close()


def series(store: MetricStore, name: str, dims: dict[str, str], since: float) -> list[float]:
    """Per-second maxima of one AWS/RDS metric since `since` (wall clock)."""
    (metric,) = store.list_metrics(
        "AWS/RDS", name, [{"Name": k, "Value": v} for k, v in dims.items()]
    )
    buckets = store.buckets(metric, since // 1, time.time() + 1, 1)
    return [b.maximum for b in buckets]


def test_real_load_scales_up_and_back_down(manager, monkeypatch):
    monkeypatch.setattr(cap, "DOWN_HOLD", 1.0)  # the model's timing has unit tests; keep this short
    ep = manager.mysql("rds:cluster/cap-live", user="admin", password=PASSWORD, database="app")
    cluster = SimpleNamespace(
        identifier="cap-live",
        instance_ids=("cap-live-instance-1",),
        host=ep.host,
        port=ep.port,
        master_username="admin",
        password=PASSWORD,
        engine_pid=ep.pid,
        min_acu=0.5,
        max_acu=8.0,
        seconds_until_auto_pause=None,
    )
    store = MetricStore()
    since = time.time()
    monitor = cap.CapacityMonitor(store, lambda: [cluster], interval=0.2)
    monitor.start()
    try:
        time.sleep(0.8)
        assert monitor.capacity("cap-live") == 0.5  # idle
        stop = threading.Event()
        clients = [threading.Thread(target=busy_client, args=(ep.port, stop)) for _ in range(3)]
        for t in clients:
            t.start()
        try:  # three busy clients: well above the 0.5 minimum
            peak = wait_until(
                lambda: (acus := monitor.capacity("cap-live")) >= 2.0 and acus,
                what="at least 2 ACUs under load",
                timeout=3,
                interval=0.1,
            )
        finally:
            stop.set()
            for t in clients:
                t.join()
        wait_until(
            lambda: monitor.capacity("cap-live") < peak,
            what=f"capacity to come down from {peak} ACUs after the load",
            timeout=6,
            interval=0.1,
        )
        assert monitor.state("cap-live") == "available"
    finally:
        monitor.stop()

    for dims in (
        {"DBClusterIdentifier": "cap-live"},
        {"DBInstanceIdentifier": "cap-live-instance-1"},
    ):
        acus = series(store, "ServerlessDatabaseCapacity", dims, since)
        assert min(acus) == 0.5 and max(acus) >= peak  # the load ran a little past the polling
        assert max(series(store, "ACUUtilization", dims, since)) == max(acus) / 8 * 100
        assert max(series(store, "DatabaseConnections", dims, since)) >= 3
        assert max(series(store, "CPUUtilization", dims, since)) > 0
    names = {m.name for m in store.list_metrics("AWS/RDS")}
    assert names == {
        "ServerlessDatabaseCapacity",
        "ACUUtilization",
        "DatabaseConnections",
        "CPUUtilization",
    }


def test_server_restart_is_survived(manager):
    owner = "rds:cluster/cap-restart"
    ep = manager.mysql(owner, user="admin", password=PASSWORD, database="app")
    cluster = SimpleNamespace(
        identifier="cap-restart",
        instance_ids=("cap-restart-1",),
        host=ep.host,
        port=ep.port,
        master_username="admin",
        password=PASSWORD,
        engine_pid=ep.pid,
        min_acu=0.5,
        max_acu=2.0,
        seconds_until_auto_pause=None,
    )
    store = MetricStore()
    monitor = cap.CapacityMonitor(store, lambda: [cluster], interval=0.2)
    monitor.start()
    try:
        time.sleep(0.6)
        manager.stop(owner)
        time.sleep(0.6)  # ticks against a stopped server: no error escapes, capacity stays
        assert monitor.capacity("cap-restart") == 0.5
        assert monitor._thread is not None and monitor._thread.is_alive()
        ep = manager.mysql(owner, user="admin", password=PASSWORD, database="app")
        cluster.port, cluster.engine_pid = ep.port, ep.pid
        dims = [{"Name": "DBClusterIdentifier", "Value": "cap-restart"}]
        (metric,) = store.list_metrics("AWS/RDS", "DatabaseConnections", dims)

        def measured() -> float:
            return sum(b.count for b in store.buckets(metric, 0, time.time() + 10, 1))

        before = measured()
        wait_until(
            lambda: measured() >= before + 2,
            what="two measurements of the new server",
            timeout=5,
            interval=0.1,
        )
    finally:
        monitor.stop()


def test_idle_cluster_pauses_and_a_client_resumes_it(manager, monkeypatch):
    monkeypatch.setenv(cap.PAUSE_SCALE_ENV, "0.01")  # 300 s idle -> 3 s; 15 s resume -> 0.15 s
    ep = manager.mysql("rds:cluster/cap-pause", user="admin", password=PASSWORD, database="app")
    cluster = SimpleNamespace(
        identifier="cap-pause",
        instance_ids=("cap-pause-1",),
        host=ep.host,
        port=ep.port,
        master_username="admin",
        password=PASSWORD,
        engine_pid=ep.pid,
        min_acu=0.0,
        max_acu=2.0,
        seconds_until_auto_pause=300,
    )
    monitor = cap.CapacityMonitor(MetricStore(), lambda: [cluster], interval=0.2)
    monitor.start()
    try:
        wait_until(  # the monitor's own queries are not activity
            lambda: monitor.state("cap-pause") == "paused",
            what="the idle cluster to pause",
            timeout=6,
            interval=0.1,
        )
        assert monitor.capacity("cap-pause") == 0.0
        conn = pymysql.connect(host=ep.host, port=ep.port, user="admin", password=PASSWORD)
        try:
            state = wait_until(
                lambda: (found := monitor.state("cap-pause")) != "paused" and found,
                what="a client to wake the cluster",
                timeout=3,
                interval=0.05,
            )
            assert state in ("resuming", "available")
        finally:
            conn.close()
        time.sleep(0.3)
        assert monitor.state("cap-pause") == "available" and monitor.capacity("cap-pause") == 0.5
        assert monitor.wake("cap-pause") is False
    finally:
        monitor.stop()
