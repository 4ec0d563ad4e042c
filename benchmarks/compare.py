"""`python -m benchmarks --compare URL`: the portable workload on the local cloud and another
endpoint in the same run, side by side with the ratio, and the same calls answered by a replay
(client_floor.py): the share of each figure that is the client's own.

The other endpoint is any AWS-compatible emulator the user has running (it gets dummy
credentials). Each group of figures runs on the local cloud, then at once on the other
endpoint, so both see the machine in the same state. A figure the other endpoint cannot serve
shows its error in place of a number.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import boto3

from . import client_floor
from .cloud import load_average, private_lab
from .targets import met_text, verdict
from .workload import Endpoint, Sizes, attempt, dynamodb_figures, lambda_figures

COMPARED = Path(__file__).resolve().parents[1] / "build" / "bench" / "compare.json"

# key, label, field of the result, unit, whether a higher value is better, target key
FIGURES = (
    ("lambda_warm", "Lambda warm invoke p50 (echo handler)", "median_ms", "ms", False,
     "lambda_warm_p50"),
    ("lambda_cold_start", "Lambda cold start", "median_ms", "ms", False, None),
    ("lambda_rate_echo", "Lambda invokes/s, {callers} callers, echo handler", "per_s", "/s", True,
     "lambda_rate_echo"),
    ("lambda_rate_printing", "Lambda invokes/s, {callers} callers, handler that prints one line",
     "per_s", "/s", True, "lambda_rate_printing"),
    ("dynamodb_get", "DynamoDB GetItem p50", "median_ms", "ms", False, "dynamodb_get_p50"),
    ("dynamodb_put", "DynamoDB PutItem p50", "median_ms", "ms", False, "dynamodb_put_p50"),
)  # fmt: skip


def value_of(result: dict[str, Any], field: str) -> float | None:
    """The figure's number, or None when the endpoint could not serve it."""
    return None if "error" in result else result[field]


def cell(result: dict[str, Any], field: str, unit: str) -> str:
    """'1.64 ms', '634 /s (3 errors)' or 'cannot serve: <error>'."""
    if "error" in result:
        return f"cannot serve: {result['error']}"
    value = result[field]
    text = f"{value:.0f} /s" if unit == "/s" else f"{value:.2f} ms"
    if result.get("errors"):
        text += f" ({result['errors']} errors)"
    return text


def ratio(local: float | None, other: float | None, higher_better: bool) -> str:
    """'ahead 33.0x' or 'behind 1.3x' from the local cloud's side; '' when one is missing."""
    if not local or not other:
        return ""
    factor = local / other if higher_better else other / local
    return f"ahead {factor:.1f}x" if factor >= 1 else f"behind {1 / factor:.1f}x"


def compare_rows(
    local: dict[str, Any],
    other: dict[str, Any],
    other_name: str,
    callers: int = 8,
    floor: dict[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The side-by-side table: one row per figure; `floor` is client_floor.measure()'s."""
    rows = []
    floor = floor or {}
    for key, label, field, unit, higher_better, target in FIGURES:
        mine, theirs = local.get(key, {"error": "not run"}), other.get(key, {"error": "not run"})
        judged = verdict(target, value_of(mine, field))
        if judged["met"] and mine.get("errors"):
            judged["met"] = False  # a rate counts successful invokes; failures miss the target
        rows.append(
            {
                "figure": label.format(callers=callers),
                "local cloud": cell(mine, field, unit),
                other_name: cell(theirs, field, unit),
                "local cloud is": ratio(
                    value_of(mine, field), value_of(theirs, field), higher_better
                ),
                "boto3 client alone": cell(floor[key], field, unit) if key in floor else "",
                "server's share, local / other": _shares(mine, theirs, floor.get(key), unit),
                "local target": judged["target"],
                "met": met_text(judged["met"]),
            }
        )
    return rows


def _shares(
    mine: dict[str, Any], theirs: dict[str, Any], floor: dict[str, Any] | None, unit: str
) -> str:
    """For a latency: the time each server adds to the client's own ('0.24 / 0.62 ms, 2.6x').

    Both subtract the same floor, measured after both endpoints' figures (not in turn with
    them, as `make bench` does for the local cloud alone), so a slow minute shows here.
    """
    if unit != "ms":
        return ""
    values = [value_of(r, "median_ms") for r in (mine, theirs, floor or {"error": ""})]
    if None in values:
        return ""
    local, other = (value - values[2] for value in values[:2])
    text = f"{local:.2f} / {other:.2f} ms"
    return f"{text}, {other / local:.1f}x" if local > 0 and other > 0 else text


def run_compare(url: str, sizes: Sizes | None = None) -> dict[str, Any]:
    """Both endpoints' figures, measured group by group in one run."""
    sizes = sizes or Sizes()
    loads = [load_average()]
    results: dict[str, dict[str, Any]] = {"local": {}, "other": {}}
    with private_lab() as lab:
        local = Endpoint("local cloud", lab.session, lab.endpoint_url)
        other_session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=lab.region
        )
        other = Endpoint(url, other_session, url)
        for group in (dynamodb_figures, lambda_figures):
            for side, endpoint in (("local", local), ("other", other)):
                results[side].update(group(endpoint, sizes))
        attempt(results, "floor", lambda: client_floor.measure(local, sizes))
    loads.append(load_average())
    return {"endpoint": url, "callers": sizes.callers, "load_average": loads, **results}


def main(url: str, name: str | None = None) -> None:
    """Run the comparison, print the table and write build/bench/compare.json."""
    from helpers.report import text_table

    compared = run_compare(url)
    floor = compared["floor"]
    rows = compare_rows(
        compared["local"], compared["other"], name or url, compared["callers"], floor
    )
    print(text_table(rows))
    if "error" in floor:
        print(f"\nboto3 client alone: not measured ({floor['error']})")
    print(f"\nload average (1, 5, 15 min) before / after: {compared['load_average']}")
    COMPARED.parent.mkdir(parents=True, exist_ok=True)
    COMPARED.write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                **compared,
            },
            indent=2,
        )
    )
    print(f"written to {COMPARED}")
