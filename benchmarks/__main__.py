"""Benchmarks of the local cloud: every figure the course relies on, against its target.

Run with `make bench` (or `python -m benchmarks`). Each figure is a median (and p99 for call
latencies) over repeated runs, measured from a client as a notebook would see it, and printed
with its target from the project's issues (benchmarks/targets.py) and whether it is met. The
run uses a private state directory and port, so a running course daemon is not disturbed.
Results are printed and written to build/bench/results.json. `--compare URL` runs the
portable part of the workload against another AWS-compatible endpoint too (compare.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from . import client_floor, compare
from .alb import bench_alb
from .aurora import bench_cluster
from .cloud import load_average, private_lab
from .elasticache import bench_cache
from .fargate_aurora import bench_inventory
from .memory import bench_lambda_memory
from .rds_proxy import bench_rds_proxy
from .rest_api import bench_rest_crud
from .streams import bench_stream_sync
from .table import build
from .timing import timings
from .workload import Endpoint, Sizes, attempt, dynamodb_figures, lambda_figures

RESULTS = Path(__file__).resolve().parents[1] / "build" / "bench" / "results.json"


def bench_start(runs: int = 3) -> dict[str, float]:
    """Seconds from `up` to healthy, cold (a fresh state directory each time)."""
    from localcloud import daemon

    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as state:
            os.environ["LOCALCLOUD_STATE_DIR"] = state
            started = time.perf_counter()
            daemon.up(quiet=True)
            samples.append(time.perf_counter() - started)
            daemon.down()
    return {"median_s": round(statistics.median(samples), 3), "runs": runs}


def bench_calls(lab: Any) -> dict[str, dict[str, float]]:
    """Control-plane (moto) and metric store (course provider) call latencies."""
    cloudwatch, sts = lab.client("cloudwatch"), lab.client("sts")
    now = dt.datetime.now(dt.UTC)
    dims = [{"Name": "Service", "Value": "bench"}]

    def put_metric() -> None:
        cloudwatch.put_metric_data(
            Namespace="Bench",
            MetricData=[
                {"MetricName": "Latency", "Dimensions": dims, "Value": 1.0, "Unit": "Milliseconds"}
            ],
        )

    def get_metric() -> None:
        cloudwatch.get_metric_data(
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=5),
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "Bench",
                            "MetricName": "Latency",
                            "Dimensions": dims,
                        },
                        "Period": 60,
                        "Stat": "p99",
                    },
                }
            ],
        )

    return {
        "sts get_caller_identity (moto)": timings(sts.get_caller_identity, 300),
        "cloudwatch put_metric_data (provider)": timings(put_metric, 300),
        "cloudwatch get_metric_data p99 (provider)": timings(get_metric, 300),
    }


def bench_data_api(lab: Any) -> dict[str, dict[str, float]]:
    """Data API ExecuteStatement: a primary-key SELECT and an INSERT on a local cluster."""
    import itertools

    cluster = bench_cluster(lab, "bench", data_api=True)
    data = lab.client("rds-data")
    target = {
        "resourceArn": cluster["DBClusterArn"],
        "database": "bench",
        "secretArn": cluster["MasterUserSecret"]["SecretArn"],
    }
    data.execute_statement(
        **target,
        sql="CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
    )
    names = (f"item-{n}" for n in itertools.count())

    def insert() -> None:
        data.execute_statement(
            **target,
            sql="INSERT INTO items (name) VALUES (:name)",
            parameters=[{"name": "name", "value": {"stringValue": next(names)}}],
        )

    def select() -> None:
        data.execute_statement(
            **target,
            sql="SELECT id, name FROM items WHERE id = :id",
            parameters=[{"name": "id", "value": {"longValue": 42}}],
        )

    return {"data api INSERT": timings(insert, 500), "data api SELECT by key": timings(select, 500)}


def run() -> None:
    """Run every benchmark, print a table with the targets and write the JSON results."""
    from helpers.report import text_table

    loads = [load_average()]
    print(f"load average (1, 5, 15 min): {loads[0]}", flush=True)
    os.environ["LOCALCLOUD_PORT"] = "0"
    start = bench_start()
    with private_lab() as lab:
        endpoint = Endpoint("local cloud", lab.session, lab.endpoint_url)
        sizes = Sizes()
        portable = {**dynamodb_figures(endpoint, sizes), **lambda_figures(endpoint, sizes)}
        floor: dict[str, Any] = {}
        attempt(floor, "client_floor", lambda: client_floor.measure(endpoint, sizes))
        calls = bench_calls(lab)
        data_api = bench_data_api(lab)
        alb = bench_alb(lab)
        streams = bench_stream_sync(lab)
        proxy = bench_rds_proxy(lab)
        cache = bench_cache(lab)
        rest_crud = bench_rest_crud(lab)
        inventory = bench_inventory(lab)
        memory = bench_lambda_memory(lab)
    loads.append(load_average())
    results = {
        "local_cloud_start": start,
        "portable": portable,
        **floor,
        "calls": calls,
        "data_api": data_api,
        "alb": alb,
        "lambda_memory": memory,
        "rds_proxy": proxy,
        "elasticache": cache,
        "rest_api_crud": rest_crud,
        "dynamodb_streams": streams,
        "fargate_inventory": inventory,
    }
    table = build(results)
    print(text_table(table.rows))
    judged = [v for v in table.verdicts if v["met"] is not None]
    missed = [v["figure"] for v in judged if not v["met"]]
    print(f"\ntargets met: {len(judged) - len(missed)} of {len(judged)}")
    print(f"load average (1, 5, 15 min) before / after: {loads}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average": loads,
                },
                "targets": table.verdicts,
                "targets_missed": missed,
                **results,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS}")


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks` (everything) or `--compare URL` (against another endpoint)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--compare",
        metavar="URL",
        help="instead of the full run: the portable workload (Lambda, DynamoDB) on a private "
        "local cloud and on this AWS-compatible endpoint, side by side",
    )
    parser.add_argument("--name", help="the other endpoint's column title (default: its URL)")
    args = parser.parse_args(argv)
    if args.compare:
        compare.main(args.compare, args.name)
    else:
        run()


if __name__ == "__main__":
    main()
