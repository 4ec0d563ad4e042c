"""The one way tests wait for something that happens in the background: poll with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> T:
    """Call `check` until it returns something truthy and return that; fail after `timeout` s.

    The failure names `what` was awaited and the last value `check` returned; `explain`, if
    given, adds what else a reader needs to see (e.g. the events of a service).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    details = f"\n{explain()}" if explain else ""
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}{details}")
