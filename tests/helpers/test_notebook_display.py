"""What notebooks display: whole tables, the course map, progress bars, this run's metrics."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import nbformat
import pytest
from tqdm import tqdm as tqdm_std

import helpers
from helpers import costs, pacing
from helpers.notebooks import course_map
from helpers.report import Table


def test_tables_show_whole_numbers_and_full_text_without_row_numbers() -> None:
    table = Table({"item": ["x" * 80, "TOTAL"], "count": [37.0, None], "usd": [0.25, 1.5]})
    table.hide_index = True
    html = table.dropna(how="all").round(2)._repr_html_()  # derived frames keep the display
    assert "<td>37</td>" in html and "37.0" not in html
    assert "x" * 80 in html and "…" not in html
    assert "<td>0.25</td>" in html
    assert "<th>0</th>" not in html  # no index column


def test_the_cost_table_shows_every_item_uncut() -> None:
    html = costs.estimate("18")._repr_html_()
    for line in costs.ESTIMATES["18"]:
        assert line.item in html
    assert "<th>0</th>" not in html


def _notebook(folder: Path, name: str, title: str, runtime: str) -> None:
    cells = [nbformat.v4.new_markdown_cell(f"# {title}"), nbformat.v4.new_markdown_cell(runtime)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(folder / name))


def test_the_course_map_lists_notebooks_times_and_reuse(tmp_path: Path) -> None:
    _notebook(
        tmp_path,
        "19_aurora.ipynb",
        "19 · Aurora with the Data API",
        "## Runtime and cost\n\n- **local**: about 2 minutes.\n- **aws**: about 20 minutes.",
    )
    _notebook(
        tmp_path,
        "20_proxy.ipynb",
        "20 · RDS Proxy",
        "## Runtime and cost\n\n- **local**: about 5 minutes (workers).\n"
        "- **aws**: about 30 minutes: the cluster (if pattern 19's is not there) too.",
    )
    rows = course_map(tmp_path).data.splitlines()
    assert rows[2].startswith("| 19 | [Aurora with the Data API](19_aurora.ipynb) |")
    assert "| about 2 minutes | about 20 minutes |  |" in rows[2]
    assert "| about 5 minutes | about 30 minutes | pattern 19's, when it is there |" in rows[3]
    assert len(rows) == 4  # the header, its rule and one row per notebook


def test_outside_a_notebook_the_progress_bar_is_text_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = pacing.progress_bar(total=2, desc="waiting")
    bar.update(2)
    bar.close()
    assert type(bar) is tqdm_std
    out, err = capsys.readouterr()
    assert "waiting" in out and err == ""  # never a red stderr box in a notebook


def test_metrics_tables_start_when_this_run_connected(lab: helpers.Lab) -> None:
    """A point an earlier run (same names) published is not in this run's table."""
    namespace, name = "ServerlessCourse/Test", f"Window{time.time_ns()}"
    now = dt.datetime.now(dt.UTC)
    earlier = now - dt.timedelta(minutes=5)
    for when, value in ((earlier, 1.0), (now, 2.0)):
        helpers.cloudwatch.put_values(lab, namespace, name, [value], timestamp=when)
    metric = helpers.cloudwatch.Metric(namespace, name, "Sum")
    lab.started_at = (now - dt.timedelta(minutes=10)).timestamp()
    assert sorted(helpers.cloudwatch.metrics_frame(lab, [metric]).iloc[:, 0]) == [1, 2]

    lab.started_at = (now - dt.timedelta(minutes=2)).timestamp()  # the run after `earlier`
    assert list(helpers.cloudwatch.metrics_frame(lab, [metric]).iloc[:, 0]) == [2]
