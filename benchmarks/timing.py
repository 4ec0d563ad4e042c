"""Timing of repeated calls: median and p99 in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timings(call: Callable[[], Any], repeat: int, warmup: int = 5) -> dict[str, float]:
    """Median and p99 of `call` in milliseconds."""
    return summary(samples(call, repeat, warmup))


def samples(call: Callable[[], Any], repeat: int, warmup: int = 5) -> list[float]:
    """How long each of `repeat` calls took, in milliseconds, after `warmup` calls."""
    for _ in range(warmup):
        call()
    taken = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def summary(taken: list[float]) -> dict[str, float]:
    """Median, p99 and count of call times in milliseconds."""
    ordered = sorted(taken)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "n": len(ordered),
    }


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy result of `check`, polled every 0.2 s (a benchmark's set-up waits)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"benchmark setup: timed out waiting for {what}")
