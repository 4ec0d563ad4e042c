"""Aurora Serverless v2 capacity in the local cloud: a model driven by real measurements.

This is not AWS's scaling algorithm (AWS does not publish it) but a small documented model.
It turns what a cluster's private MariaDB server is really doing into ACUs, so that charts
and the pause/resume life cycle have AWS's shape.

Measured each tick (every `interval`, default 1 s) for each cluster:
- cpu: CPU time of the server process (utime + stime in /proc/<pid>/stat) per wall-clock
  second, in cores (1.0 = one core fully busy);
- connections: `Threads_connected`, not counting the monitor's own connection;
- qps: the increase of `Questions` per second, not counting the monitor's own statement
  (activity that postpones auto-pause, not load).

The model (`CapacityModel`, deterministic and free of I/O):
- load = 0.5 + 4.0 x cpu + 0.1 x connections ACU. Calibrated on AWS's definition of an ACU
  (about 2 GiB of memory with the CPU and network that go with it) and on the memory-optimised
  instance classes Aurora is sized against (db.r6g and db.r7g: 8 GiB per vCPU), so one
  fully busy core is worth 4 ACU; each client connection holds memory (0.1 ACU). Statements
  per second add nothing by themselves: a stream of trivial queries (six callers reading a
  5-row table) keeps the server's CPU low and the capacity near its floor, as on AWS, while
  CPU-heavy SQL (notebook 19's `crunch`, which hashes in a loop) on a 2-core machine asks
  for up to 8.5 ACU. The calibration is ours: AWS does not publish its scaling algorithm.
- target = load rounded to the nearest 0.5 ACU, clamped to [max(MinCapacity, 0.5), MaxCapacity].
- Scaling up is fast: capacity at most doubles each second, and may always rise by 1 ACU/s.
  From 0.5 to 4 ACU takes 3 s.
- Scaling down is gradual. Once the load has needed less than the current capacity for 3 s,
  capacity falls by 0.5 ACU/s (one 0.5-ACU step a second) down to the target. From 4 to
  0.5 ACU takes about 10 s after the load stops, three times as long as the rise (on AWS
  the fall takes minutes; the shape, not the duration, is the model's).
- The reported capacity is the model's level rounded up to 0.5 ACU: it moves in 0.5-ACU steps.

Auto-pause applies only when MinCapacity is 0:
- Activity means a client connection, a client statement, or a Data API request (`wake`).
  CPU use is not activity: on AWS, background work does not prevent a pause either.
- After SecondsUntilAutoPause (300 when unset) with no activity, the cluster is "paused" at
  capacity 0.
- A Data API request or a client connection starts a resume. `wake` returns True, so the
  caller answers DatabaseResumingException. The cluster is "resuming" at capacity 0 for
  15 s (30 s if it was paused for more than 24 h), then "available" at 0.5 ACU.
- LOCALCLOUD_AURORA_PAUSE_SCALE (a positive number, default 1.0) multiplies every pause and
  resume duration. For tests and notebooks, 0.01 turns the 300 s idle time into 3 s and the
  15 s resume into 0.15 s. Under the AWS timing profile (`localcloud/timing.py`) the
  profile's scale applies unless this is set: with 0.2, a cluster pauses after 60 s without
  activity and resumes in 3 s, so notebooks meet DatabaseResumingException as on AWS.

Published every tick to namespace AWS/RDS at 1-second resolution, one datum per
DBInstanceIdentifier and one per DBClusterIdentifier:
- ServerlessDatabaseCapacity (Count) and ACUUtilization (Percent: capacity / MaxCapacity x 100);
- DatabaseConnections (Count): client connections;
- CPUUtilization (Percent): as AWS defines it for Serverless v2, the CPU used over the CPU
  available at MaxCapacity, where 1 ACU counts as 0.25 core (the model's 4 ACU per core).
  A cluster without a Serverless v2 configuration (max_acu None) gets no capacity metrics,
  and its CPUUtilization is over the machine's cores.

Where the local cloud differs from AWS:
- One MariaDB server serves all of a cluster's instances, so each instance reports the
  cluster's values and the cluster value (their average) is the same.
- Capacity is bookkeeping: the server's memory and CPU limits do not change with it.
- While "paused" or "resuming" the server keeps running. A direct connection (not through
  the Data API) is served at once and only starts the resume, where AWS makes it wait. The
  Data API refuses requests with DatabaseResumingException, as on AWS.
- AWS computes these metrics every second but keeps RDS metrics per minute; here they are
  kept per second.
- Connections the local cloud holds open for a cluster count as client connections: a
  connection pool that stays open prevents auto-pause.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from ..metrics import MetricStore
from ..timing import timing_profile
from .state import ClusterDatabase

log = logging.getLogger("localcloud.rds.capacity")

STEP = 0.5  # ACU granularity of capacity
RUNNING_MIN = 0.5  # the smallest capacity of a running (not paused) instance
BASE_ACU = 0.5  # the load model: BASE + PER_CORE * cpu + PER_CONNECTION * connections
ACU_PER_CORE = 4.0  # 2 GiB per ACU, 8 GiB per vCPU on db.r6g/r7g
ACU_PER_CONNECTION = 0.1
UP_FACTOR = 2.0  # capacity may at most double each second ...
UP_MIN_RATE = 1.0  # ... but may always rise by 1 ACU/s
DOWN_HOLD = 3.0  # seconds of lower load before scaling down starts
DOWN_RATE = 0.5  # ACU/s: one 0.5-ACU step a second
DEFAULT_AUTO_PAUSE = 300  # AWS's default and minimum SecondsUntilAutoPause
RESUME_SECONDS = 15.0  # AWS: ≈15 s if paused for less than 24 h ...
LONG_RESUME_SECONDS = 30.0  # ... ≈30 s if paused longer
LONG_PAUSE = 86400.0
PAUSE_SCALE_ENV = "LOCALCLOUD_AURORA_PAUSE_SCALE"
AVAILABLE, PAUSED, RESUMING = "available", "paused", "resuming"
NAMESPACE = "AWS/RDS"
_STATUS_SQL = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Questions')"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Measurement:
    """One tick's load: server CPU in cores (None: unknown), client connections and statements/s."""

    cpu: float | None = 0.0
    connections: int = 0
    qps: float = 0.0

    @property
    def active(self) -> bool:
        """True when a client is connected or sent a statement (what prevents auto-pause)."""
        return self.connections > 0 or self.qps > 0


def load_acu(m: Measurement) -> float:
    """The model's ACU need for a load, before rounding and clamping."""
    return BASE_ACU + ACU_PER_CORE * (m.cpu or 0.0) + ACU_PER_CONNECTION * m.connections


def quantise(acu: float, up: bool = False) -> float:
    """acu on the 0.5-ACU grid: to the nearest step (halves up), or up to the next step."""
    steps = acu / STEP
    return (math.ceil(steps - 1e-9) if up else math.floor(steps + 0.5)) * STEP


def pause_scale_from_env() -> float:
    """The factor on pause and resume durations: LOCALCLOUD_AURORA_PAUSE_SCALE when set,
    else the AWS timing profile's scale when it is on, else 1.0."""
    raw = os.environ.get(PAUSE_SCALE_ENV) or ""
    if not raw:
        profile = timing_profile()
        return profile.scale if profile.aws else 1.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{PAUSE_SCALE_ENV} must be a positive number, not {raw!r}")
    return value


class CapacityModel:
    """One cluster's capacity and pause state, driven by measurements and an explicit clock.

    Not thread-safe: the monitor calls it under its lock.
    """

    def __init__(
        self,
        min_acu: float | None = 0.5,
        max_acu: float | None = 1.0,
        seconds_until_auto_pause: int | None = None,
        *,
        now: float = 0.0,
        pause_scale: float = 1.0,
    ) -> None:
        """A cluster that is available at its minimum running capacity at time `now`."""
        self.pause_scale = pause_scale
        self.configure(min_acu, max_acu, seconds_until_auto_pause)
        self._state = AVAILABLE
        self._level = self.low
        self._target = self.low
        self._last = self._needed = self._activity = self._paused_at = self._resume_at = now

    def configure(
        self, min_acu: float | None, max_acu: float | None, seconds_until_auto_pause: int | None
    ) -> None:
        """Apply the cluster's ServerlessV2ScalingConfiguration (max None: not Serverless v2)."""
        self.min_acu = 0.5 if min_acu is None else float(min_acu)
        self.max_acu = None if max_acu is None else float(max_acu)
        seconds = seconds_until_auto_pause
        self.seconds_until_auto_pause = DEFAULT_AUTO_PAUSE if seconds is None else seconds

    @property
    def serverless(self) -> bool:
        """True for a Serverless v2 cluster (one with a MaxCapacity)."""
        return self.max_acu is not None

    @property
    def low(self) -> float:
        """The lowest running capacity: MinCapacity, but at least 0.5."""
        return max(self.min_acu, RUNNING_MIN)

    @property
    def high(self) -> float:
        """The highest capacity: MaxCapacity (never below the lowest)."""
        return max(self.max_acu or 0.0, self.low)

    @property
    def auto_pause_after(self) -> float | None:
        """Seconds of inactivity before pausing (scaled), or None when auto-pause is off."""
        if self.serverless and self.min_acu == 0:
            return self.seconds_until_auto_pause * self.pause_scale
        return None

    @property
    def target(self) -> float:
        """The capacity the last measured load asked for."""
        return self._target

    @property
    def capacity(self) -> float:
        """Current ACUs: 0 while paused or resuming, and for a cluster that is not serverless."""
        if not self.serverless or self._state != AVAILABLE:
            return 0.0
        return min(max(quantise(self._level, up=True), self.low), self.high)

    def state(self, now: float) -> str:
        """'available', 'paused' or 'resuming' at time now."""
        self._advance(now)
        return self._state

    def wake(self, now: float) -> bool:
        """A request arrives: True while the cluster is paused or resuming (it starts resuming)."""
        self._advance(now)
        if self._state == PAUSED:
            self._resume(now)
        if self._state == RESUMING:
            return True
        self._activity = now
        return False

    def step(self, m: Measurement | None, now: float) -> float:
        """Advance to now with this tick's measurement (None: not measured); the capacity."""
        dt, self._last = max(0.0, now - self._last), now
        self._advance(now)
        if m is None or not self.serverless:
            return self.capacity
        if m.active:
            self._activity = now
            if self._state == PAUSED:
                self._resume(now)  # a client connected directly to the paused cluster
        if self._state != AVAILABLE:
            return 0.0
        self._target = min(max(quantise(load_acu(m)), self.low), self.high)
        self._level = min(max(self._level, self.low), self.high)  # the range may have changed
        if self._target >= self._level:
            self._needed = now
            grow = max(UP_MIN_RATE * dt, self._level * (UP_FACTOR**dt - 1))
            self._level = min(self._target, self._level + grow)
        else:
            falling = min(dt, now - self._needed - DOWN_HOLD)  # seconds past the hold period
            if falling > 0:
                self._level = max(self._target, self._level - DOWN_RATE * falling)
        pause_after = self.auto_pause_after
        if pause_after is not None and now - self._activity >= pause_after:
            self._state, self._paused_at, self._level = PAUSED, now, 0.0
        return self.capacity

    def _resume(self, now: float) -> None:
        long_pause = now - self._paused_at > LONG_PAUSE * self.pause_scale
        seconds = LONG_RESUME_SECONDS if long_pause else RESUME_SECONDS
        self._state, self._resume_at = RESUMING, now + seconds * self.pause_scale

    def _advance(self, now: float) -> None:
        """Timed transitions: a resume finishes; a pause ends when auto-pause is turned off."""
        if self._state == PAUSED and self.auto_pause_after is None:
            self._resume(now)
        if self._state == RESUMING and now >= self._resume_at:
            self._state, self._level = AVAILABLE, self.low
            self._activity = self._needed = now


class _Sampler:
    """Measures one cluster's server: a persistent monitoring connection and /proc CPU time."""

    def __init__(self) -> None:
        """No connection yet; the first sample only sets the baselines."""
        self._conn: Any = None
        self._key: tuple[Any, ...] | None = None
        self._questions: tuple[int, float] | None = None  # (Questions, when)
        self._cpu: tuple[int, float, float] | None = None  # (pid, CPU seconds, when)

    def sample(self, cluster: ClusterDatabase) -> Measurement | None:
        """This tick's measurement, or None (server down, restarted or just connected)."""
        cpu = self._cpu_cores(cluster.engine_pid)
        try:
            with self._connect(cluster).cursor() as cur:
                cur.execute(_STATUS_SQL)
                status = {name: int(value) for name, value in cur.fetchall()}
        except (pymysql.err.Error, OSError):
            self.close()  # down or restarting: reconnect next tick, from fresh baselines
            return None
        now, previous = time.monotonic(), self._questions
        self._questions = (status["Questions"], now)
        if previous is None or status["Questions"] < previous[0] or now <= previous[1]:
            return None
        client_statements = max(0, status["Questions"] - previous[0] - 1)  # 1: our SHOW
        connections = max(0, status["Threads_connected"] - 1)  # 1: our connection
        return Measurement(cpu, connections, client_statements / (now - previous[1]))

    def close(self) -> None:
        """Close the monitoring connection and forget the baselines."""
        conn, self._conn, self._key, self._questions = self._conn, None, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to tell the server
                conn.close()

    def _connect(self, cluster: ClusterDatabase) -> Any:
        key = (cluster.host, cluster.port, cluster.master_username, cluster.password)
        if self._conn is None or key != self._key:
            self.close()
            self._conn = pymysql.connect(
                host=cluster.host,
                port=int(cluster.port),
                user=cluster.master_username,
                password=cluster.password,
                connect_timeout=1,
                read_timeout=2,
                write_timeout=2,
                autocommit=True,
            )
            self._key = key
        return self._conn

    def _cpu_cores(self, pid: int | None) -> float | None:
        """Cores used by pid since the last call (None on the first call or without /proc)."""
        previous, self._cpu = self._cpu, None
        if not pid:
            return None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime
        except (OSError, IndexError, ValueError):
            return None
        now = time.monotonic()
        self._cpu = (pid, used, now)
        if previous is None or previous[0] != pid or used < previous[1] or now <= previous[2]:
            return None
        return (used - previous[1]) / (now - previous[2])


class CapacityMonitor:
    """Measures each cluster's server every tick, steps its model and publishes AWS/RDS metrics."""

    def __init__(
        self,
        store: MetricStore,
        clusters: Callable[[], list[ClusterDatabase]],
        interval: float = 1.0,
    ) -> None:
        """Monitor the clusters that clusters() returns, publishing to store."""
        self.store = store
        self.interval = interval
        self.pause_scale = pause_scale_from_env()
        self._clusters = clusters
        self._clock = time.monotonic
        self._lock = threading.Lock()  # guards the models and the dropped set
        self._models: dict[str, CapacityModel] = {}
        self._dropped: set[str] = set()
        self._samplers: dict[str, _Sampler] = {}  # used by the monitor thread only
        self._errors: dict[str, str] = {}  # the last error logged per cluster
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (one tick per interval); no-op if running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, name="aurora-capacity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the monitoring connections."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for sampler in self._samplers.values():
            sampler.close()
        self._samplers.clear()

    def state(self, cluster_id: str) -> str:
        """'available', 'paused' or 'resuming' ('available' for a cluster not yet seen)."""
        with self._lock:
            model = self._models.get(cluster_id)
            return model.state(self._clock()) if model else AVAILABLE

    def capacity(self, cluster_id: str) -> float:
        """The cluster's current ACUs (0.0 for a cluster not yet seen)."""
        with self._lock:
            model = self._models.get(cluster_id)
            if model is None:
                return 0.0
            model.state(self._clock())  # a resume may have finished since the last tick
            return model.capacity

    def wake(self, cluster_id: str) -> bool:
        """A Data API request: True if it must be refused because the cluster is (now) resuming."""
        with self._lock:
            return self._model(cluster_id).wake(self._clock())

    def forget(self, cluster_id: str) -> None:
        """Drop the cluster's model; its monitoring connection closes at the next tick."""
        with self._lock:
            self._models.pop(cluster_id, None)
            self._dropped.add(cluster_id)

    def tick(self) -> None:
        """Measure, model and publish every cluster once (the thread's loop body)."""
        try:
            clusters = list(self._clusters())
        except Exception:
            log.warning("capacity monitor: listing the clusters failed", exc_info=True)
            return
        live = {c.identifier for c in clusters}
        with self._lock:
            dropped, self._dropped = self._dropped, set()
            for cluster_id in [c for c in self._models if c not in live]:
                del self._models[cluster_id]
        for cluster_id in [c for c in self._samplers if c in dropped or c not in live]:
            self._samplers.pop(cluster_id).close()
        for cluster in clusters:
            try:
                self._tick_cluster(cluster)
                self._errors.pop(cluster.identifier, None)
            except Exception as e:  # one failing cluster must not stop the others
                if self._errors.get(cluster.identifier) != repr(e):
                    self._errors[cluster.identifier] = repr(e)
                    log.warning("capacity monitor: %s failed", cluster.identifier, exc_info=True)

    def _run(self) -> None:
        next_tick = self._clock()
        while not self._halt.is_set():
            self.tick()
            next_tick = max(next_tick + self.interval, self._clock())  # no catch-up bursts
            self._halt.wait(max(0.0, next_tick - self._clock()))

    def _model(self, cluster_id: str) -> CapacityModel:
        """The cluster's model, created at its minimum capacity (call with the lock held)."""
        model = self._models.get(cluster_id)
        if model is None:
            model = CapacityModel(now=self._clock(), pause_scale=self.pause_scale)
            self._models[cluster_id] = model
        return model

    def _tick_cluster(self, cluster: ClusterDatabase) -> None:
        cluster_id = cluster.identifier
        sampler = self._samplers.setdefault(cluster_id, _Sampler())
        measurement = sampler.sample(cluster)  # network and /proc I/O, outside the lock
        with self._lock:
            model = self._model(cluster_id)
            model.configure(cluster.min_acu, cluster.max_acu, cluster.seconds_until_auto_pause)
            capacity = model.step(measurement, self._clock())
            max_acu = model.max_acu
        data: list[tuple[str, float, str]] = []
        if max_acu is not None:
            utilization = capacity / max_acu * 100 if max_acu > 0 else 0.0
            data.append(("ServerlessDatabaseCapacity", capacity, "Count"))
            data.append(("ACUUtilization", round(utilization, 2), "Percent"))
        if measurement is not None:
            data.append(("DatabaseConnections", measurement.connections, "Count"))
            if measurement.cpu is not None:
                cores = max_acu / ACU_PER_CORE if max_acu else float(os.cpu_count() or 1)
                cpu = min(100.0, measurement.cpu / cores * 100) if cores > 0 else 0.0
                data.append(("CPUUtilization", round(cpu, 2), "Percent"))
        dimensions = [{"DBClusterIdentifier": cluster_id}]
        dimensions += [{"DBInstanceIdentifier": i} for i in cluster.instance_ids]
        for name, value, unit in data:
            for dims in dimensions:
                self.store.put(
                    NAMESPACE, name, value, dimensions=dims, unit=unit, storage_resolution=1
                )
