"""Tumbling windows: aggregate a stream over fixed windows, carrying the function's state.

As https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html describes: window
boundaries come from the records' arrival times; each invocation of a window gets the
`state` the function returned last time in that window (`{}` at first), and must return a
`state` again, or the invocation counts as failed. When a window is over and its records
are processed, one last invocation with no records and `isFinalInvokeForWindow: true`
hands the function the final state; it is retried until it succeeds.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def window_of(created: float, seconds: int) -> float:
    """The start (epoch seconds) of the window a record arriving at `created` belongs to."""
    return created - created % seconds


def event_fields(
    start: float,
    seconds: int,
    state: dict[str, Any],
    shard_id: str,
    stream_arn: str,
    final: bool,
) -> dict[str, Any]:
    """What a windowed invocation adds to the `Records` of its event."""
    return {
        "window": {"start": _iso(start), "end": _iso(start + seconds)},
        "state": state,
        "shardId": shard_id,
        "eventSourceARN": stream_arn,
        "isFinalInvokeForWindow": final,
        "isWindowTerminatedEarly": False,
    }


def returned_state(body: bytes) -> dict[str, Any] | None:
    """The `state` the function returned, or None when its response has none."""
    try:
        response = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(response, dict) or not isinstance(response.get("state"), dict):
        return None
    return response["state"]


def _iso(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
