"""`make course` in miniature: notebook 00 through the runner twice, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys


def test_course_runs_twice_and_leaves_no_resources(cloud, tmp_path):
    for attempt in (1, 2):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "helpers.runner",
                "00",
                "--output-dir",
                str(tmp_path),
                "-p",
                "RUN_ID",
                "twice",
                "--timeout",
                "300",
            ],
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, f"run {attempt}:\n{done.stdout}\n{done.stderr}"
        assert "00_start_here  passed" in done.stdout
        assert "course resources left: none" in done.stdout
    status = subprocess.run(
        [sys.executable, "-m", "helpers.localcloud", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(status.stdout)["resources"] == []
