"""The runner's papermill processes: made ready ahead, each with papermill and a kernel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import psutil
import pytest
from polling import wait_until

from helpers.papermill_process import Papermill

REPORT = """import json, os
os.write(2, b"written to the kernel's stderr\\n")
print(json.dumps({'cwd': os.getcwd(), 'pid': os.getpid()}))"""


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(REPORT)]
    nbformat.write(nb, path)
    return path


def _run(children: Papermill, notebook: Path, out: Path) -> dict:
    """Run the notebook in `notebook`'s directory; what its kernel reported."""
    log = out.with_suffix(".log")
    proc = children.start(
        [str(notebook), str(out)], log, kernel="python3", directory=notebook.parent
    )
    assert proc.wait(120) == 0, log.read_text()
    return json.loads(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"])


def _kernels_of(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [p for p in psutil.Process(proc.pid).children() if "ipykernel" in " ".join(p.cmdline())]


def test_a_notebook_runs_on_the_kernel_started_ahead_and_leaves_no_kernel(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    children = Papermill()
    try:
        ran = [
            _run(children, _notebook(first / "16_x.ipynb"), tmp_path / "1.ipynb"),
            _run(children, _notebook(second / "17_x.ipynb"), tmp_path / "2.ipynb"),  # elsewhere
        ]
        ready = children._spare
        assert ready is not None
        (ahead,) = wait_until(lambda: _kernels_of(ready), what="the spare's kernel")
        ran.append(_run(children, _notebook(second / "18_x.ipynb"), tmp_path / "3.ipynb"))
        spare = children._spare
        assert spare is not None
        (waiting,) = wait_until(lambda: _kernels_of(spare), what="the next spare's kernel")
    finally:
        children.close()
    assert [Path(r["cwd"]) for r in ran] == [first, second, second]
    assert ran[2]["pid"] == ahead.pid  # started before its notebook was known
    assert "written to the kernel's stderr" in (tmp_path / "3.log").read_text()
    assert not any(psutil.pid_exists(r["pid"]) for r in ran)  # each kernel ended with its run
    assert spare.poll() == 0 and not psutil.pid_exists(waiting.pid)


def test_a_child_logs_an_import_failure_and_the_spare_ends_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child imports papermill before it is given a notebook: a failure lands in the log."""
    shadow = tmp_path / "shadow" / "papermill"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('papermill is broken here')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    children = Papermill()
    log = tmp_path / "16_x.log"

    proc = children.start(["in.ipynb", "out.ipynb"], log, kernel="python3", directory=tmp_path)
    spare = children._spare

    assert proc.wait(60) != 0
    assert "ImportError: papermill is broken here" in log.read_text()
    assert spare is not None and spare.poll() is None  # the next child waits for its notebook
    children.close()
    assert spare.poll() == 0


def test_a_kernel_that_cannot_start_ahead_is_reported_in_the_log(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "16_x.ipynb")
    children = Papermill()
    log = tmp_path / "16_x.log"
    argv = [str(notebook), str(tmp_path / "out.ipynb")]
    try:
        proc = children.start(argv, log, kernel="python9", directory=tmp_path)
        assert proc.wait(60) != 0
    finally:
        children.close()
    text = log.read_text()
    assert "kernel started ahead failed; papermill starts one:" in text
    assert "No such kernel named python9" in text  # and papermill's own attempt says why
