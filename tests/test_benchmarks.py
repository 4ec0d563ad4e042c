"""`make bench`'s portable workload and its comparison table (the timings are not asserted)."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.exceptions import ClientError

import helpers
from benchmarks import client_floor
from benchmarks.compare import compare_rows
from benchmarks.table import Rows, _client_floor
from benchmarks.targets import verdict
from benchmarks.workload import (
    Endpoint,
    Sizes,
    create_table,
    dynamodb_figures,
    get_item,
    lambda_figures,
)

SMALL = Sizes(latency_calls=20, cold_starts=2, callers=2, per_caller=5, rate_rounds=2)
FIGURES = (
    "dynamodb_get",
    "dynamodb_put",
    "lambda_cold_start",
    "lambda_warm",
    "lambda_rate_echo",
    "lambda_rate_printing",
)


def _closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_workload_measures_every_figure_on_the_local_cloud_and_reports_what_another_cannot(
    lab: helpers.Lab,
) -> None:
    local = Endpoint("local cloud", lab.session, lab.endpoint_url)
    measured = {**dynamodb_figures(local, SMALL), **lambda_figures(local, SMALL)}
    assert all("error" not in measured[key] for key in FIGURES), measured
    for key in ("dynamodb_get", "dynamodb_put", "lambda_warm"):
        assert measured[key]["n"] == SMALL.latency_calls
        assert 0 < measured[key]["median_ms"] <= measured[key]["p99_ms"]
    for key in ("lambda_rate_echo", "lambda_rate_printing"):
        rate = measured[key]
        assert rate["errors"] == 0 and rate["n"] == 20 and len(rate["rounds"]) == 2
        assert rate["per_s"] > 0
    assert measured["lambda_cold_start"]["n"] == 2

    url = f"http://127.0.0.1:{_closed_port()}"
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=lab.region
    )
    unreachable = Endpoint(url, session, url)
    failed = {**dynamodb_figures(unreachable, SMALL), **lambda_figures(unreachable, SMALL)}
    assert all("EndpointConnectionError" in failed[key]["error"] for key in FIGURES), failed

    rows = compare_rows(measured, failed, url, callers=SMALL.callers)
    assert [row["figure"] for row in rows][2] == "Lambda invokes/s, 2 callers, echo handler"
    assert all(row[url].startswith("cannot serve: EndpointConnectionError") for row in rows)
    assert all(row["local cloud is"] == "" for row in rows)
    assert all(row["local cloud"].endswith((" ms", " /s")) for row in rows)


def test_the_client_floor_replays_the_recorded_answers_and_nothing_else(lab: helpers.Lab) -> None:
    local = Endpoint("local cloud", lab.session, lab.endpoint_url)
    ddb = local.client("dynamodb")
    create_table(ddb, "floor-test")
    key = {"id": {"S": "k"}}
    answers = client_floor.record(ddb, lambda: get_item(ddb, "floor-test"))
    assert list(answers) == ["DynamoDB_20120810.GetItem"]
    with client_floor.replay(answers) as url:
        replayed = Endpoint("replay", lab.session, url).client("dynamodb")
        answer = replayed.get_item(TableName="floor-test", Key=key)
        assert answer["Item"] == ddb.get_item(TableName="floor-test", Key=key)["Item"]
        with pytest.raises(ClientError, match="500"):
            replayed.describe_table(TableName="floor-test")  # never recorded

    floor = client_floor.measure(local, SMALL)
    assert [floor[k]["n"] for k in ("dynamodb_get", "dynamodb_put", "lambda_warm")] == [20] * 3
    assert floor["lambda_rate_echo"]["errors"] == 0 and floor["lambda_rate_echo"]["n"] == 20
    portable = {
        k: {"median_ms": floor[k]["median_ms"] + 0.25, "p99_ms": 9.0, "n": 20}
        for k in ("dynamodb_get", "dynamodb_put", "lambda_warm")
    }
    for key in ("dynamodb_get", "dynamodb_put", "lambda_warm"):
        paired = floor[key]["paired_median_ms"] - floor[key]["median_ms"]
        assert abs(floor[key]["added_ms"] - paired) < 0.002  # real calls taken in turn
    table = Rows()
    _client_floor(table, floor)
    added = [r for r in table.rows if "time the local cloud adds" in r["benchmark"]]
    assert [r["median"] for r in added] == [
        f"{floor[k]['added_ms']:.3f} ms" for k in ("dynamodb_get", "dynamodb_put", "lambda_warm")
    ]
    compared = compare_rows(portable, {}, "other", callers=SMALL.callers, floor=floor)
    assert compared[0]["boto3 client alone"].endswith(" ms")  # warm invoke
    assert compared[1]["boto3 client alone"] == ""  # cold start: not replayed
    assert compared[0]["server's share, local / other"] == ""  # the other did not run
    other = {"dynamodb_get": {"median_ms": floor["dynamodb_get"]["median_ms"] + 0.75}}
    shares = compare_rows(portable, other, "other", floor=floor)[4]
    assert shares["figure"] == "DynamoDB GetItem p50"
    assert shares["server's share, local / other"] == "0.25 / 0.75 ms, 3.0x"


def test_ratios_read_from_the_local_clouds_side_and_targets_judge_the_right_way() -> None:
    local = {
        "lambda_warm": {"median_ms": 2.0, "p99_ms": 3.0, "n": 1},
        "lambda_rate_echo": {"per_s": 500.0, "errors": 0},
        "lambda_rate_printing": {"per_s": 900.0, "errors": 3},
        "dynamodb_get": {"median_ms": 0.5, "p99_ms": 1.0, "n": 1},
    }
    other = {
        "lambda_warm": {"median_ms": 50.0, "p99_ms": 60.0, "n": 1},
        "lambda_rate_echo": {"per_s": 125.0, "errors": 0},
        "lambda_rate_printing": {"per_s": 3600.0, "errors": 0},
        "dynamodb_get": {"median_ms": 1.0, "p99_ms": 2.0, "n": 1},
    }
    rows = {row["figure"]: row for row in compare_rows(local, other, "other")}
    warm = rows["Lambda warm invoke p50 (echo handler)"]
    assert (warm["local cloud is"], warm["met"]) == ("ahead 25.0x", "NO")
    echo = rows["Lambda invokes/s, 8 callers, echo handler"]
    assert (echo["local cloud is"], echo["met"]) == ("ahead 4.0x", "NO")
    printing = rows["Lambda invokes/s, 8 callers, handler that prints one line"]
    assert printing["local cloud is"] == "behind 4.0x"
    assert (printing["local cloud"], printing["met"]) == ("900 /s (3 errors)", "NO")
    get = rows["DynamoDB GetItem p50"]
    assert (get["local cloud is"], get["met"], get["local target"]) == (
        "ahead 2.0x",
        "yes",
        "<= 0.8 ms (issue 18)",
    )
    cold = rows["Lambda cold start"]
    assert (cold["local cloud"], cold["local target"], cold["met"]) == (
        "cannot serve: not run",
        "no target",
        "",
    )
    assert verdict("lambda_rate_printing", 800.0)["met"] is True
    assert verdict("lambda_rate_printing", 799.9)["met"] is False
    assert verdict("cache_lambda_miss_over_hit", 5.0)["target"] == ">= 5x (issue 14)"
    assert verdict(None, 1.0) == {"target": "no target", "met": None}


def test_the_inventory_figure_fails_its_target_on_any_error() -> None:
    from benchmarks.table import Rows, _inventory

    figure = {"clients": 50, "per_s": 500.0, "median_ms": 60.0, "p99_ms": 400.0, "n": 5000}
    rows = Rows()
    _inventory(rows, {**figure, "errors": 0})
    _inventory(rows, {**figure, "errors": 2})
    _inventory(rows, {"error": "no request succeeded"})
    assert [row["met"] for row in rows.rows] == ["yes", "NO", "NO"]
    assert rows.rows[0]["median"] == "60.00 ms" and "500 requests/s" in rows.rows[0]["benchmark"]
