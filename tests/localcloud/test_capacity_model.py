"""The Aurora Serverless v2 capacity model, driven by synthetic measurements and a fake clock."""

from __future__ import annotations

import threading
import time

import pytest
from polling import wait_until

from localcloud.rds import capacity as cap
from localcloud.rds.capacity import CapacityModel, Measurement

IDLE = Measurement(cpu=0.005, connections=0, qps=0.0)
BURST = Measurement(cpu=1.0, connections=3, qps=120.0)  # load 0.5 + 4 + 0.3 = 4.8 -> 5.0


def run(model: CapacityModel, m: Measurement, start: float, seconds: int) -> list[float]:
    """Step once per second from start+1 to start+seconds; the capacities after each step."""
    return [model.step(m, start + t) for t in range(1, seconds + 1)]


def test_load_formula_and_quantisation():
    assert cap.load_acu(Measurement(0.0, 0, 0.0)) == 0.5
    assert cap.load_acu(Measurement(0.5, 2, 60.0)) == pytest.approx(0.5 + 2.0 + 0.2)
    assert cap.load_acu(Measurement(None, 0, 1e6)) == 0.5  # statements alone need no capacity
    # Six callers reading a small table (little CPU) barely move it; a busy core asks for 4 ACU.
    assert cap.quantise(cap.load_acu(Measurement(0.1, 6, 150.0))) == 1.5
    assert cap.quantise(cap.load_acu(Measurement(1.0, 0, 5.0))) == 4.5
    assert [cap.quantise(x) for x in (0.5, 0.74, 0.75, 1.2, 2.26)] == [0.5, 0.5, 1.0, 1.0, 2.5]
    assert [cap.quantise(x, up=True) for x in (0.5, 0.51, 1.0, 3.75)] == [0.5, 1.0, 1.0, 4.0]


def test_idle_stays_at_min():
    model = CapacityModel(0.5, 8)
    assert set(run(model, IDLE, 0, 120)) == {0.5}
    model = CapacityModel(2, 8)
    assert set(run(model, IDLE, 0, 30)) == {2.0}
    assert model.state(30) == "available"


def test_burst_scales_up_within_seconds_to_the_clamped_target():
    model = CapacityModel(0.5, 8)
    assert run(model, BURST, 0, 5) == [1.5, 3.0, 5.0, 5.0, 5.0]  # doubles per second, then target
    assert model.target == 5.0
    small = CapacityModel(0.5, 4)
    assert run(small, BURST, 0, 4) == [1.5, 3.0, 4.0, 4.0]  # clamped to MaxCapacity


def test_scale_down_is_gradual_in_half_acu_steps():
    model = CapacityModel(0.5, 8)
    run(model, BURST, 0, 10)
    after = run(model, IDLE, 10, 40)
    # held for 3 s after the load's last tick (t=9), then one 0.5-ACU step a second
    assert after[:4] == [5.0, 5.0, 5.0, 4.5]
    assert all(a >= b for a, b in zip(after, after[1:], strict=False))
    drops = [(t, a - b) for t, (a, b) in enumerate(zip(after, after[1:], strict=False)) if a != b]
    assert {d for _, d in drops} == {0.5}
    assert all(t2 - t1 == 1 for (t1, _), (t2, _) in zip(drops, drops[1:], strict=False))
    assert len(drops) == 9 and after[-1] == 0.5
    reached = after.index(0.5) + 1  # seconds after the load stopped
    assert 12 <= reached <= 14  # the rise to 5 ACU took 3


def test_new_load_interrupts_the_scale_down():
    model = CapacityModel(0.5, 8)
    run(model, BURST, 0, 10)
    run(model, IDLE, 10, 5)
    assert model.capacity == 4.0
    assert model.step(BURST, 20) == 5.0


def test_capacity_never_leaves_the_range():
    model = CapacityModel(1, 3)
    loads = [IDLE, BURST, Measurement(2.0, 50, 1e5), IDLE, Measurement(0.3, 1, 10)] * 20
    seen = [model.step(m, t * 0.7) for t, m in enumerate(loads, 1)]
    assert min(seen) >= 1.0 and max(seen) <= 3.0
    assert all(c * 2 == int(c * 2) for c in seen)  # on the 0.5-ACU grid
    model.configure(0.5, 2, None)  # a smaller range applies at the next step
    assert model.step(BURST, 100) <= 2.0


def test_auto_pause_after_the_idle_time_when_min_is_zero():
    model = CapacityModel(0, 4, 300)
    before = run(model, IDLE, 0, 299)
    assert set(before) == {0.5} and model.state(299) == "available"
    assert model.step(IDLE, 300) == 0.0
    assert model.state(300) == "paused" and model.capacity == 0.0


def test_activity_postpones_the_pause():
    model = CapacityModel(0, 4, 300)
    run(model, IDLE, 0, 200)
    assert model.wake(200) is False  # a Data API request while available: just activity
    run(model, IDLE, 200, 299)
    assert model.state(499) == "available"
    model.step(Measurement(0.0, 1, 0.0), 500)  # a connected client
    run(model, IDLE, 500, 299)
    assert model.state(799) == "available"
    assert model.step(IDLE, 800) == 0.0


def test_busy_cpu_alone_does_not_prevent_the_pause():
    model = CapacityModel(0, 4, 300)
    run(model, Measurement(0.1, 0, 0.0), 0, 300)
    assert model.state(300) == "paused"


def test_no_pause_when_min_is_half_an_acu():
    model = CapacityModel(0.5, 4, 300)
    run(model, IDLE, 0, 1000)
    assert model.state(1000) == "available" and model.capacity == 0.5


def test_seconds_until_auto_pause_defaults_to_300():
    model = CapacityModel(0, 4, None)
    run(model, IDLE, 0, 300)
    assert model.state(300) == "paused"


def test_wake_resumes_a_paused_cluster():
    model = CapacityModel(0, 4, 300)
    run(model, IDLE, 0, 300)
    assert model.wake(400) is True  # DatabaseResumingException
    assert model.state(400) == "resuming" and model.capacity == 0.0
    assert model.wake(410) is True  # still resuming
    assert model.step(IDLE, 414) == 0.0
    assert model.state(415) == "available" and model.capacity == 0.5
    assert model.wake(416) is False
    assert model.step(BURST, 417) > 0.5  # scales normally again


def test_a_direct_connection_resumes_a_paused_cluster():
    model = CapacityModel(0, 4, 300)
    run(model, IDLE, 0, 300)
    assert model.step(Measurement(0.0, 1, 5.0), 301) == 0.0
    assert model.state(301) == "resuming"
    assert model.state(316) == "available"


def test_resume_after_a_long_pause_takes_30_seconds():
    model = CapacityModel(0, 4, 300)
    run(model, IDLE, 0, 300)
    assert model.wake(300 + 90000) is True
    assert model.state(300 + 90000 + 29) == "resuming"
    assert model.state(300 + 90000 + 30) == "available"


def test_turning_auto_pause_off_resumes():
    model = CapacityModel(0, 4, 300)
    run(model, IDLE, 0, 300)
    model.configure(0.5, 4, None)
    model.step(IDLE, 301)
    assert model.state(301) == "resuming"
    assert model.state(316) == "available"


def test_pause_scale_shortens_pause_and_resume():
    model = CapacityModel(0, 4, 300, pause_scale=0.01)
    for t in range(1, 31):
        model.step(IDLE, t / 10)
    assert model.state(3.0) == "paused"
    assert model.wake(3.0) is True
    assert model.state(3.14) == "resuming"
    assert model.state(3.16) == "available"


def test_pause_scale_from_the_environment(monkeypatch):
    monkeypatch.delenv(cap.PAUSE_SCALE_ENV, raising=False)
    monkeypatch.delenv("LOCALCLOUD_TIMING", raising=False)
    assert cap.pause_scale_from_env() == 1.0
    # The AWS timing profile shortens AWS's 300 s and 15 s by its scale, as its other delays.
    monkeypatch.setenv("LOCALCLOUD_TIMING", "aws")
    monkeypatch.setenv("LOCALCLOUD_TIMING_SCALE", "0.2")
    assert cap.pause_scale_from_env() == 0.2
    monkeypatch.setenv(cap.PAUSE_SCALE_ENV, "0.05")
    assert cap.pause_scale_from_env() == 0.05
    for bad in ("0", "-1", "fast", "nan"):
        monkeypatch.setenv(cap.PAUSE_SCALE_ENV, bad)
        with pytest.raises(ValueError, match=cap.PAUSE_SCALE_ENV):
            cap.pause_scale_from_env()


def test_unmeasured_ticks_keep_the_capacity():
    model = CapacityModel(0.5, 8)
    run(model, BURST, 0, 5)
    assert [model.step(None, t) for t in range(6, 30)] == [5.0] * 24


def test_a_cluster_without_serverless_config_has_no_capacity():
    model = CapacityModel(None, None, None)
    assert not model.serverless
    assert run(model, BURST, 0, 3) == [0.0, 0.0, 0.0]
    assert model.wake(4) is False and model.state(4) == "available"


class FakeStore:
    """Records put() calls."""

    def __init__(self) -> None:
        self.data: list[tuple[str, str, float, dict[str, str], str]] = []

    def put(self, namespace, name, value, *, dimensions, unit, storage_resolution=60):
        self.data.append((namespace, name, value, dimensions, unit))


class Cluster:
    """A cluster whose server does not answer (nothing listens on port 1)."""

    identifier = "c1"
    instance_ids = ("c1-writer", "c1-reader")
    host, port, master_username, password = "127.0.0.1", 1, "admin", "pw"
    engine_pid = None
    min_acu, max_acu, seconds_until_auto_pause = 0.5, 4.0, None


def test_monitor_publishes_capacity_even_when_the_server_is_down():
    store = FakeStore()
    broken = Cluster()
    broken.identifier = "broken"

    class Bad:
        identifier = "bad"  # lacks every other attribute: its tick fails

    clusters = [Bad(), Cluster(), broken]
    monitor = cap.CapacityMonitor(store, lambda: clusters, interval=0.05)
    monitor.tick()
    published = {(d[1], tuple(d[3].items()), d[4]) for d in store.data}
    for name, unit in (("ServerlessDatabaseCapacity", "Count"), ("ACUUtilization", "Percent")):
        assert (name, (("DBClusterIdentifier", "c1"),), unit) in published
        assert (name, (("DBInstanceIdentifier", "c1-writer"),), unit) in published
        assert (name, (("DBInstanceIdentifier", "c1-reader"),), unit) in published
    assert {d[1] for d in store.data} == {"ServerlessDatabaseCapacity", "ACUUtilization"}
    assert {d[2] for d in store.data if d[1] == "ACUUtilization"} == {12.5}  # 0.5 of 4 ACU
    assert monitor.capacity("c1") == 0.5 and monitor.state("c1") == "available"
    assert "bad" not in monitor._models
    monitor.forget("c1")
    assert monitor.capacity("c1") == 0.0 and monitor.state("c1") == "available"
    clusters.remove(broken)
    monitor.tick()
    assert "broken" not in monitor._models and "broken" not in monitor._samplers
    assert "c1" in monitor._models


def test_monitor_thread_ticks_and_stops_quickly():
    store = FakeStore()
    monitor = cap.CapacityMonitor(store, lambda: [Cluster()], interval=0.05)
    monitor.start()
    monitor.start()  # already running: no second thread
    wait_until(lambda: len(store.data) >= 30, what="30 samples stored", timeout=5, interval=0.02)
    started = time.monotonic()
    monitor.stop()
    assert time.monotonic() - started < 1.0
    assert not [t for t in threading.enumerate() if t.name == "aurora-capacity"]
