"""The daemon's memory through a Lambda storm: resident size before and after N invokes.

A zip function prints a line per invoke (four log events with START, END and REPORT); eight
callers invoke it N times. Each log stream keeps its latest 10,000 events
(LOCALCLOUD_LOG_EVENTS_PER_STREAM) and each AWS/Lambda metric series its latest 100,000
data, so the growth per invoke stops once both are full. The issue asks about 100,000
invokes; N is 10,000 to keep `make bench` within about a minute (the result states the N
measured). Measured with log events capped at 100 per stream, what still
grew per invoke was the four AWS/Lambda metric data (about 1.3 KiB).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

PRINTER = "def handler(event, context):\n    print('processing', event)\n    return {'ok': True}\n"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ],
}


def bench_lambda_memory(lab: Any, invokes: int = 10_000, callers: int = 8) -> dict[str, Any]:
    """The daemon's RSS (MiB) after a warm-up and after `invokes` more, and KiB per invoke."""
    from localcloud import daemon

    info = daemon.running()
    assert info is not None, "the benchmark's daemon is not running"
    iam, client = lab.client("iam"), lab.client("lambda")
    role = iam.create_role(RoleName="bench-memory", AssumeRolePolicyDocument=json.dumps(TRUST))
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", PRINTER)
    client.create_function(
        FunctionName="bench-printer",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
    )
    clients = [lab.session.client("lambda", endpoint_url=lab.endpoint_url) for _ in range(callers)]

    def storm(count: int) -> None:
        each = count // callers
        with ThreadPoolExecutor(callers) as pool:
            list(
                pool.map(
                    lambda c: [
                        c.invoke(FunctionName="bench-printer", Payload=b"{}")["Payload"].read()
                        for _ in range(each)
                    ],
                    clients,
                )
            )

    daemon_process = psutil.Process(info.pid)
    storm(callers * 100)  # warm workers, caches and connection pools first
    before = daemon_process.memory_info().rss
    started = time.perf_counter()
    storm(invokes)
    took = time.perf_counter() - started
    after = daemon_process.memory_info().rss
    done = invokes // callers * callers
    return {
        "invokes": done,
        "seconds": round(took, 1),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_invoke": round((after - before) / 1024 / done, 3),
    }
