"""Every course notebook run as a student runs it: JupyterLab in a browser, Run > Run All.

One JupyterLab (rooted as `make lab` roots it) and one private local cloud serve all the
notebooks; each gets a fresh page and kernel. The first test shows that the checks catch
what they look for, on a notebook broken on purpose; then every notebook is opened as
committed, and run with Run All (all of them, or the set BROWSER_RUN_ALL names).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_page import REPO_ROOT, JupyterLab, expected_figures, open_notebook, run_notebook
from playwright.sync_api import Browser

from helpers.notebooks import course_notebooks, notebook_number

NOTEBOOKS = course_notebooks(REPO_ROOT)
# The notebooks to Run All (numbers, space-separated; all when unset): `make test` names a
# set that fits CI's time (see the Makefile). Every notebook is opened as committed anyway.
_RUN = os.environ.get("BROWSER_RUN_ALL", "").split()
RUN_ALL = [p for p in NOTEBOOKS if not _RUN or notebook_number(p) in _RUN]
# Notebooks with a wait long enough locally for a progress bar to show (a task, a service,
# a cluster); the others finish their waits before a bar is drawn.
SHOWS_PROGRESS = {"17", "18", "19"}


def test_the_checks_catch_a_broken_notebook(
    browser: Browser, jupyterlab: JupyterLab, screenshots: Path
) -> None:
    """An erroring cell, a stderr line and a missing diagram are all reported."""
    broken = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Broken\n\n![diagram](../images/no_such.png)"),
            nbformat.v4.new_code_cell("import sys\n\nprint('fine'); sys.stderr.write('noise')"),
            nbformat.v4.new_code_cell("1 / 0"),
            nbformat.v4.new_code_cell("print('never runs')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    folder = jupyterlab.root / "broken"
    folder.mkdir(exist_ok=True)
    nbformat.write(broken, str(folder / "broken.ipynb"))

    result = run_notebook(browser, jupyterlab, "broken/broken.ipynb", screenshots, figures=1)

    found = "\n".join(result.problems)
    assert "ZeroDivisionError" in found
    assert "stderr box: noise" in found
    assert "not run: code cells [2]" in found
    assert "markdown image did not load: /files/images/no_such.png" in found
    assert "0 figures rendered, 1 expected" in found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[notebook_number(p) for p in NOTEBOOKS])
def test_committed_notebook_opens_clean(
    browser: Browser, jupyterlab: JupyterLab, path: Path
) -> None:
    """As committed, before any run: diagrams load, saved figures show, no red box or path."""
    figures = expected_figures(jupyterlab.root / "committed" / path.name)  # as copied
    result = open_notebook(browser, jupyterlab, f"committed/{path.name}", figures)

    assert result.problems == [], f"{path.name}:\n" + "\n".join(result.problems)


@pytest.mark.parametrize("path", RUN_ALL, ids=[notebook_number(p) for p in RUN_ALL])
def test_notebook_runs_clean_in_jupyterlab(
    browser: Browser, jupyterlab: JupyterLab, screenshots: Path, path: Path
) -> None:
    """Run All leaves no error, no stderr, every cell run, every image and figure shown."""
    figures = expected_figures(jupyterlab.root / "committed" / path.name)
    result = run_notebook(browser, jupyterlab, f"notebooks/{path.name}", screenshots, figures)

    assert result.problems == [], f"{path.name}:\n" + "\n".join(result.problems)
    assert result.code_cells > 0
    if notebook_number(path) in SHOWS_PROGRESS:
        assert result.progress_widgets_seen, f"{path.name}: no progress bar rendered as a widget"
