"""`make course` in miniature: each notebook twice through the runner, nothing left behind.

The first run keeps its resources (CLEANUP False), so the second run proves the notebook
works again on top of them (every step get-or-create), then tears everything down.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Shorter load bursts keep the test quick; the notebooks' own runs use their defaults.
QUICK = {
    "18_fargate_http_service": ["-p", "LOAD_REQUESTS", "100"],
    "19_aurora_data_api": ["-p", "LOAD_SECONDS", "5", "-p", "LOAD_CALLERS", "2"],
    "20_rds_proxy": ["-p", "STORM_EXTRA", "15", "-p", "HOLD_SECONDS", "3"],
    "21_dynamodb_streams": ["-p", "LOAD_SECONDS", "5"],
    "23_elasticache_cache_aside": ["-p", "SEED_TIMEOUT_S", "3", "-p", "LATENCY_SAMPLES", "5"],
}


@pytest.mark.parametrize(
    "notebook",
    [
        "00_start_here",
        "16_container_lambda",
        "17_fargate_batch_task",
        "18_fargate_http_service",
        "19_aurora_data_api",
        "20_rds_proxy",
        "21_dynamodb_streams",
        "23_elasticache_cache_aside",
    ],
)
def test_notebook_runs_twice_without_teardown_between(cloud, tmp_path, notebook):
    for cleanup in ("False", "True"):
        command = [
            sys.executable,
            "-m",
            "helpers.runner",
            notebook[:2],
            "--timeout",
            "300",
            "--output-dir",
            str(tmp_path),
            "-p",
            "RUN_ID",
            "twice",
            "-p",
            "CLEANUP",
            cleanup,
            *QUICK.get(notebook, []),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, f"CLEANUP {cleanup}:\n{done.stdout}\n{done.stderr}"
        assert f"{notebook}  passed" in done.stdout
    assert "course resources left: none" in done.stdout
    status = subprocess.run(
        [sys.executable, "-m", "localcloud", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(status.stdout)["resources"] == []
