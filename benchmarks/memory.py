"""The daemon's memory through a Lambda storm: resident size after 10,000 to 100,000 invokes.

A zip function prints a line per invoke (four log events with START, END and REPORT); eight
callers invoke it 100,000 times, and the daemon's RSS is read at each checkpoint. What the
daemon keeps per invoke is bounded: each log stream keeps its latest 10,000 events
(LOCALCLOUD_LOG_EVENTS_PER_STREAM; one stream per worker, so about 20,000 invokes fill eight
streams) and each AWS/Lambda metric series its latest 100,000 samples (about 110 bytes per
invoke, in Duration, the one metric whose values differ). So the growth per invoke falls
towards zero between the last checkpoints.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

from .workload import PRINTER, TRUST

CHECKPOINTS = (10_000, 50_000, 100_000)


def bench_lambda_memory(
    lab: Any, checkpoints: tuple[int, ...] = CHECKPOINTS, callers: int = 8
) -> dict[str, Any]:
    """The daemon's RSS (MiB) after a warm-up and at each checkpoint, and KiB per invoke."""
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
    started, done, rss = time.perf_counter(), 0, {}
    for checkpoint in checkpoints:
        storm(checkpoint - done)
        done = checkpoint // callers * callers
        rss[done] = daemon_process.memory_info().rss
        print(f"  {done} invokes: daemon RSS {rss[done] / 2**20:.0f} MiB", flush=True)
    took = time.perf_counter() - started
    counts = sorted(rss)
    last, previous = counts[-1], counts[-2] if len(counts) > 1 else 0
    late_growth = rss[last] - (rss[previous] if previous else before)
    return {
        "invokes": last,
        "seconds": round(took, 1),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_mib": {n: round(rss[n] / 2**20, 1) for n in counts},
        "rss_after_mib": round(rss[last] / 2**20, 1),
        "kib_per_invoke": round((rss[last] - before) / 1024 / last, 3),
        "late_kib_per_invoke": round(late_growth / 1024 / (last - previous), 3),
    }
