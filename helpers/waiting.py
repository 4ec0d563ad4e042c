"""Waiting for AWS to finish something, with a progress bar and a timeout that says what to do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .pacing import Wait, progress_bar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """Something did not finish in time; the message names it and the way forward."""


def wait_for(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float | None = None,
    estimate: float | None = None,
    interval: float = 2.0,
    hint: str = "",
    pace: Wait | None = None,
) -> T:
    """Call `check` until it returns something truthy; show progress against `estimate` seconds.

    `pace` (a wait of `lab.pace`) gives the estimate and interval, and the timeout if the
    call gives none.
    """
    if pace is not None:
        estimate, interval = pace.estimate, pace.interval
        timeout = pace.timeout if timeout is None else timeout
    if timeout is None:
        raise TypeError(f"wait_for({what!r}) needs a timeout, or a pace that has one")
    started = time.monotonic()
    result = check()
    if result:
        return result
    total = round(estimate or timeout)
    with progress_bar(
        total=total,
        desc=what,
        unit="s",
        leave=False,
        bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s (estimate)",
    ) as bar:
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise WaitTimeout(
                    f"{what}: not done after {timeout:.0f} s (usually about {total} s). "
                    + (hint or "Re-run this cell to keep waiting; nothing was lost.")
                )
            time.sleep(min(interval, max(timeout - elapsed, 0.05)))
            bar.update(min(time.monotonic() - started, total) - bar.n)
            result = check()
            if result:
                print(f"{what}: done in {time.monotonic() - started:.0f} s")
                return result
