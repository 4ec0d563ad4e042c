"""Benchmarks of the local cloud: start time, control-plane calls, the metric store, memory.

Run with `make bench` (or `python -m benchmarks`). Each figure is a median (and p99 for call
latencies) over repeated runs, measured from a boto3 client as a notebook would see it. The
run uses a private state directory and port, so a running course daemon is not disturbed.
Results are printed and written to build/bench/results.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .alb import bench_alb
from .memory import bench_lambda_memory
from .timing import timings

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
    ddb, cloudwatch, sts = lab.client("dynamodb"), lab.client("cloudwatch"), lab.client("sts")
    ddb.create_table(
        TableName="bench",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    ddb.put_item(TableName="bench", Item={"id": {"S": "k"}, "v": {"N": "1"}})
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
        "dynamodb get_item (moto)": timings(
            lambda: ddb.get_item(TableName="bench", Key={"id": {"S": "k"}}), 300
        ),
        "sts get_caller_identity (moto)": timings(sts.get_caller_identity, 300),
        "cloudwatch put_metric_data (provider)": timings(put_metric, 300),
        "cloudwatch get_metric_data p99 (provider)": timings(get_metric, 300),
    }


HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def bench_lambda(lab: Any) -> dict[str, Any]:
    """Cold start, warm invoke latency and throughput of a trivial zip function."""
    import io
    import zipfile
    from concurrent.futures import ThreadPoolExecutor

    iam, client = lab.client("iam"), lab.client("lambda")
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", HANDLER)
    client.create_function(
        FunctionName="bench",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
    )

    def invoke(c: Any = client) -> None:
        c.invoke(FunctionName="bench", Payload=b"{}")

    cold = []
    for n in range(10):  # a configuration change retires the warm worker: the next is cold
        client.update_function_configuration(
            FunctionName="bench", Environment={"Variables": {"RUN": str(n)}}
        )
        started = time.perf_counter()
        invoke()
        cold.append((time.perf_counter() - started) * 1000)
    warm = timings(invoke, 300)
    callers, per_caller = 8, 100
    clients = [lab.session.client("lambda", endpoint_url=lab.endpoint_url) for _ in range(callers)]
    for c in clients:
        invoke(c)  # warm every worker first
    started = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(lambda c: [invoke(c) for _ in range(per_caller)], clients))
    rate = callers * per_caller / (time.perf_counter() - started)
    return {
        "cold_start": {"median_ms": round(statistics.median(cold), 2), "n": len(cold)},
        "warm_invoke": warm,
        "throughput_8_callers_per_s": round(rate, 1),
    }


def bench_data_api(lab: Any) -> dict[str, dict[str, float]]:
    """Data API ExecuteStatement: a primary-key SELECT and an INSERT on a local cluster."""
    import itertools

    rds = lab.client("rds")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="bench",
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        DatabaseName="bench",
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier="bench-writer",
        DBClusterIdentifier="bench",
        Engine="aurora-mysql",
        DBInstanceClass="db.serverless",
    )
    rds.enable_http_endpoint(ResourceArn=cluster["DBClusterArn"])
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


def main() -> None:
    """Run every benchmark, print a table and write the JSON results."""
    import helpers
    from helpers.report import text_table
    from localcloud import daemon

    os.environ["LOCALCLOUD_PORT"] = "0"
    start = bench_start()
    with tempfile.TemporaryDirectory() as state:
        os.environ["LOCALCLOUD_STATE_DIR"] = state
        lab = helpers.connect("local", run_id="bench", quiet=True)
        try:
            calls = bench_calls(lab)
            lambdas = bench_lambda(lab)
            data_api = bench_data_api(lab)
            alb = bench_alb(lab)
            memory = bench_lambda_memory(lab)
        finally:
            daemon.down()
    rows = [
        {
            "benchmark": "local cloud start (cold, to healthy)",
            "median": f"{start['median_s']:.2f} s",
            "p99": "",
            "n": start["runs"],
        }
    ]
    rows += [
        {
            "benchmark": name,
            "median": f"{r['median_ms']:.2f} ms",
            "p99": f"{r['p99_ms']:.2f} ms",
            "n": r["n"],
        }
        for name, r in calls.items()
    ]
    cold, warm = lambdas["cold_start"], lambdas["warm_invoke"]
    rows += [
        {
            "benchmark": "lambda cold start (invoke that starts a worker)",
            "median": f"{cold['median_ms']:.2f} ms",
            "p99": "",
            "n": cold["n"],
        },
        {
            "benchmark": "lambda warm invoke (boto3 round trip)",
            "median": f"{warm['median_ms']:.2f} ms",
            "p99": f"{warm['p99_ms']:.2f} ms",
            "n": warm["n"],
        },
        {
            "benchmark": "lambda invokes per second, 8 concurrent callers",
            "median": f"{lambdas['throughput_8_callers_per_s']:.0f} /s",
            "p99": "",
            "n": 800,
        },
    ]
    rows += [
        {
            "benchmark": f"{name} (boto3 round trip)",
            "median": f"{r['median_ms']:.2f} ms",
            "p99": f"{r['p99_ms']:.2f} ms",
            "n": r["n"],
        }
        for name, r in data_api.items()
    ]
    rows += [
        {
            "benchmark": f"GET to a Fargate task, {how}",
            "median": f"{alb[key]['median_ms']:.2f} ms",
            "p99": f"{alb[key]['p99_ms']:.2f} ms",
            "n": alb[key]["n"],
        }
        for key, how in (("direct", "direct to its port"), ("via_alb", "through the local ALB"))
    ]
    rows.append(
        {
            "benchmark": "ALB-forwarded / direct (ratio of medians; of p99s)",
            "median": f"{alb['ratio_median']:.2f}x",
            "p99": f"{alb['ratio_p99']:.2f}x",
            "n": "",
        }
    )
    rows.append(
        {
            "benchmark": f"daemon RSS before / after {memory['invokes']} invokes of a printing "
            "function (8 callers)",
            "median": f"{memory['rss_before_mib']:.0f} / {memory['rss_after_mib']:.0f} MiB",
            "p99": f"{memory['kib_per_invoke']:.2f} KiB/invoke overall, "
            f"{memory['late_kib_per_invoke']:.2f} in the last stretch",
            "n": memory["invokes"],
        }
    )
    print(text_table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "local_cloud_start": start,
                "calls": calls,
                "lambda": lambdas,
                "data_api": data_api,
                "alb": alb,
                "lambda_memory": memory,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
