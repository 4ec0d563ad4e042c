"""The course runner: arguments, parameters, consent, teardown handling and the summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from helpers import runner
from helpers.runner import Job, Result

PARAMETERS = (
    'BACKEND: str = "local"  # "local" or "aws"\n'
    'REGION: str = "eu-west-1"  # where to run\n'
    'RUN_ID: str = "dev"  # names every resource\n'
    "CLEANUP: bool = True  # delete at the end\n"
    "REPEAT: int = 3  # how often\n"
)


def make_notebook(path: Path, *code: str, parameters: str = PARAMETERS, aws_only: str = "") -> Path:
    """Write a small notebook: a parameters cell, optional aws-only cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    if aws_only:
        nb.cells.append(nbformat.v4.new_code_cell(aws_only, metadata={"tags": ["aws-only"]}))
    nb.cells += [nbformat.v4.new_code_cell(source) for source in code]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


class TeardownRecorder:
    """A stand-in for helpers.cleanup.teardown that records its calls and can fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.error = error

    def __call__(self, pattern: str, backend: str, region: str, run_id: str) -> None:
        self.calls.append((pattern, backend, region, run_id))
        if self.error:
            raise self.error


# --- parameter values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-1.5", -1.5),
        ("True", True),
        ("False", False),
        ("None", None),
        ("[1, 2]", [1, 2]),
        ("{'a': 1}", {"a": 1}),
        ("'quoted'", "quoted"),
        ("aws", "aws"),
        ("us-east-1", "us-east-1"),
        ("0123", "0123"),
        ("", ""),
        ("__import__('os')", "__import__('os')"),
    ],
)
def test_parse_value_reads_literals_and_keeps_other_text(text: str, expected: Any) -> None:
    value = runner.parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


# --- command line -----------------------------------------------------------------------


def test_parse_args_defaults() -> None:
    args = runner.parse_args([])
    assert args.notebooks == []
    assert args.backend == "local"
    assert args.parameters == {}
    assert args.timeout == 900
    assert args.output_dir == Path("build/executed")
    assert args.fail_fast is False
    assert args.accept_costs is False


def test_parse_args_collects_notebooks_and_repeated_parameters() -> None:
    args = runner.parse_args(
        ["16", "17", "-p", "REPEAT", "5", "-p", "RUN_ID", "abc", "--timeout", "60", "--fail-fast"]
    )
    assert args.notebooks == ["16", "17"]
    assert args.parameters == {"REPEAT": "5", "RUN_ID": "abc"}  # raw until a notebook is known
    assert args.timeout == 60
    assert args.fail_fast is True
    assert runner.parse_args(["--keep-going"]).fail_fast is False


def test_backend_can_come_from_a_parameter() -> None:
    args = runner.parse_args(["-p", "BACKEND", "aws"])
    assert args.backend == "aws"
    assert "BACKEND" not in args.parameters  # injected once, from args.backend


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "local", "-p", "BACKEND", "aws"],
        ["-p", "BACKEND", "gcp"],
        ["--backend", "azure"],
        ["--timeout", "0"],
        ["--keep-going", "--fail-fast"],
        ["-p", "ONLY_NAME"],
    ],
)
def test_parse_args_rejects_contradictions_and_bad_values(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runner.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


# --- AWS consent ------------------------------------------------------------------------


def test_local_runs_need_no_consent() -> None:
    assert runner.consent_refusal(runner.parse_args([])) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "aws"],
        ["--backend", "aws", "-p", "CONSENT_TO_COSTS", "yes"],
        ["--backend", "aws", "-p", "CONSENT_TO_COSTS", "False"],
    ],
)
def test_aws_without_consent_is_refused_with_the_reason(argv: list[str]) -> None:
    message = runner.consent_refusal(runner.parse_args(argv))
    assert message is not None
    assert "billable" in message
    assert "-p CONSENT_TO_COSTS True" in message
    assert "--i-accept-aws-costs" in message


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "aws", "-p", "CONSENT_TO_COSTS", "True"],
        ["--backend", "aws", "--i-accept-aws-costs"],
    ],
)
def test_aws_with_consent_may_start(argv: list[str]) -> None:
    assert runner.consent_refusal(runner.parse_args(argv)) is None


def test_main_refuses_aws_before_running_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = make_notebook(tmp_path / "16_x.ipynb", "print('ran')")
    teardown = TeardownRecorder()
    out_dir = tmp_path / "out"
    code = runner.main(
        [str(notebook), "--backend", "aws", "--output-dir", str(out_dir)], teardown=teardown
    )
    assert code == 2
    assert "Refusing to run on AWS" in capsys.readouterr().err
    assert not out_dir.exists()
    assert teardown.calls == []


# --- choosing notebooks -----------------------------------------------------------------


def test_resolve_notebooks_by_number_stem_name_or_path(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    first = make_notebook(folder / "00_start_here.ipynb")
    lam = make_notebook(folder / "16_lambda.ipynb")
    last = make_notebook(folder / "99_cleanup.ipynb")
    make_notebook(folder / "scratch.ipynb")  # not numbered: never part of the course
    assert runner.resolve_notebooks([], folder) == [first, lam, last]
    assert runner.resolve_notebooks(["99", "16_lambda", "00_start_here.ipynb"], folder) == [
        last,
        lam,
        first,
    ]
    assert runner.resolve_notebooks([str(lam)], folder) == [lam.resolve()]


def test_resolve_notebooks_rejects_unknown_and_ambiguous_names(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    make_notebook(folder / "16_a.ipynb")
    make_notebook(folder / "16_b.ipynb")
    with pytest.raises(ValueError, match="'16' names 2 notebooks"):
        runner.resolve_notebooks(["16"], folder)
    with pytest.raises(ValueError, match="available: 16_a, 16_b"):
        runner.resolve_notebooks(["42"], folder)
    with pytest.raises(ValueError, match="no numbered notebooks"):
        runner.resolve_notebooks([], tmp_path / "empty")


# --- parameters per notebook ------------------------------------------------------------


def test_plan_job_types_values_by_the_notebooks_annotations(tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "16_x.ipynb")
    args = runner.parse_args(["-p", "RUN_ID", "2024", "-p", "REPEAT", "7", "-p", "EXTRA", "[1]"])
    job = runner.plan_job(notebook, args, "rsession")
    # RUN_ID is annotated str: "2024" stays text; REPEAT is int; EXTRA is undeclared: a literal.
    assert job.params == {"BACKEND": "local", "RUN_ID": "2024", "REPEAT": 7, "EXTRA": [1]}
    assert (job.region, job.run_id) == ("eu-west-1", "2024")


def test_plan_job_keeps_the_notebooks_own_run_id_and_region(tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "16_x.ipynb")
    job = runner.plan_job(notebook, runner.parse_args(["-p", "REGION", "us-west-2"]), "rsession")
    assert job.params == {"BACKEND": "local", "REGION": "us-west-2"}
    assert (job.region, job.run_id) == ("us-west-2", "dev")


def test_plan_job_replaces_an_empty_run_id_so_teardown_can_find_the_run(tmp_path: Path) -> None:
    empty = PARAMETERS.replace('RUN_ID: str = "dev"', 'RUN_ID: str = ""')
    notebook = make_notebook(tmp_path / "16_x.ipynb", parameters=empty)
    job = runner.plan_job(notebook, runner.parse_args([]), "rsession")
    assert job.params["RUN_ID"] == "rsession"
    assert job.run_id == "rsession"


def test_quick_parameters_apply_only_when_asked_and_yield_to_p_values(tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "19_aurora_data_api.ipynb")
    quick = runner.QUICK_PARAMETERS["19_aurora_data_api"]
    plain = runner.plan_job(notebook, runner.parse_args([]), "rsession")
    assert not set(quick) & set(plain.params)
    args = runner.parse_args(["--quick", "-p", "LOAD_CALLERS", "4"])
    job = runner.plan_job(notebook, args, "rsession", cleanup=False)
    assert job.params["LOAD_SECONDS"] == int(quick["LOAD_SECONDS"])
    assert (job.params["LOAD_CALLERS"], job.params["CLEANUP"]) == (4, False)


def test_twice_refuses_a_cleanup_parameter() -> None:
    with pytest.raises(SystemExit):
        runner.parse_args(["--twice", "-p", "CLEANUP", "True"])


def test_plan_job_passes_consent_given_by_flag(tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "16_x.ipynb")
    args = runner.parse_args(["--backend", "aws", "--i-accept-aws-costs"])
    job = runner.plan_job(notebook, args, "rsession")
    assert job.params["BACKEND"] == "aws"
    assert job.params["CONSENT_TO_COSTS"] is True


def test_local_runs_read_a_copy_without_aws_only_cells(tmp_path: Path) -> None:
    notebook = make_notebook(tmp_path / "16_x.ipynb", "x = 1", aws_only="print('console link')")
    local = Job(notebook, {"BACKEND": "local"}, "us-east-1", "dev")
    copy = nbformat.read(str(runner.prepare_input(local, tmp_path / "out")), as_version=4)
    assert [c.cell_type for c in copy.cells] == ["code", "raw", "code"]
    assert copy.cells[1].source == "print('console link')"
    nbformat.validate(copy)
    aws = Job(notebook, {"BACKEND": "aws"}, "us-east-1", "dev")
    assert runner.prepare_input(aws, tmp_path / "out") == notebook


# --- errors and the summary -------------------------------------------------------------


def test_first_error_comes_from_the_failing_cell(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("boom()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="fine\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad thing\nmore", traceback=[]),
    ]
    nb.cells = [cell]
    nbformat.write(nb, str(tmp_path / "out.ipynb"))
    assert runner.first_error(tmp_path / "out.ipynb", "log") == "ValueError: bad thing"


def test_first_error_falls_back_to_the_logs_exception(tmp_path: Path) -> None:
    log = (
        "Input Notebook: x\nTraceback (most recent call last):\n  File ...\nNoSuchKernel: python9\n"
    )
    assert runner.first_error(tmp_path / "missing.ipynb", log) == "NoSuchKernel: python9"
    assert runner.first_error(tmp_path / "missing.ipynb", "") == "no output; see the log"


def test_format_summary_aligns_columns_and_counts_statuses() -> None:
    results = [
        Result("16_lambda_container", "passed", 42.06, "done"),
        Result("17_task", "failed", 3.0, "failed", "ValueError: boom"),
        Result("18_alb", "timed out", 900.0, "done", "no result within 900 s"),
        Result("19_x", "not run"),
    ]
    assert runner.format_summary(results).splitlines() == [
        "notebook             status     duration s  teardown  error",
        "-------------------  ---------  ----------  --------  -----",
        "16_lambda_container  passed           42.1  done",
        "17_task              failed            3.0  failed    ValueError: boom",
        "18_alb               timed out       900.0  done      no result within 900 s",
        "19_x                 not run           0.0  -",
        "",
        "1 passed, 1 failed, 1 timed out, 1 not run; 945.1 s of notebook time",
    ]


def test_long_errors_are_shortened() -> None:
    assert len(runner._first_line("E" * 500)) == runner.ERROR_WIDTH


# --- teardown around a notebook ---------------------------------------------------------


def fake_execute(status: str, error: str = "") -> Callable[..., Result]:
    """An execute() stand-in that returns a fixed result without running anything."""

    def execute(job: Job, out_dir: Path, timeout: float, label: str) -> Result:
        return Result(job.path.stem, status, 1.0, error=error)

    return execute


def test_teardown_failure_never_hides_the_notebooks_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "execute", fake_execute("failed", "KeyError: 'x'"))
    teardown = TeardownRecorder(RuntimeError("could not delete the table"))
    job = Job(make_notebook(tmp_path / "17_x.ipynb"), {"BACKEND": "local"}, "eu-west-1", "dev")
    result = runner.run_one(job, runner.parse_args([]), teardown, "[1/1] 17_x")
    assert (result.status, result.error, result.teardown) == ("failed", "KeyError: 'x'", "failed")
    assert teardown.calls == [("17", "local", "eu-west-1", "dev")]
    assert "TEARDOWN FAILED: RuntimeError: could not delete the table" in capsys.readouterr().out


def test_a_failed_teardown_fails_a_passing_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "execute", fake_execute("passed"))
    job = Job(make_notebook(tmp_path / "16_x.ipynb"), {"BACKEND": "local"}, "us-east-1", "dev")
    result = runner.run_one(job, runner.parse_args([]), TeardownRecorder(OSError("gone")), "x")
    assert (result.status, result.teardown) == ("failed", "failed")
    assert result.error == "teardown: OSError: gone"


def test_cleanup_false_skips_the_teardown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "execute", fake_execute("passed"))
    teardown = TeardownRecorder()
    params = {"BACKEND": "local", "CLEANUP": False}
    job = Job(make_notebook(tmp_path / "16_x.ipynb"), params, "us-east-1", "dev")
    result = runner.run_one(job, runner.parse_args([]), teardown, "x")
    assert (result.status, result.teardown) == ("passed", "skipped")
    assert teardown.calls == []


def test_teardown_runs_when_the_run_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> Result:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "execute", interrupted)
    teardown = TeardownRecorder()
    job = Job(make_notebook(tmp_path / "18_x.ipynb"), {"BACKEND": "local"}, "us-east-1", "dev")
    with pytest.raises(KeyboardInterrupt):
        runner.run_one(job, runner.parse_args([]), teardown, "x")
    assert teardown.calls == [("18", "local", "us-east-1", "dev")]


def test_teardown_says_clearly_when_helpers_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import helpers

    monkeypatch.delattr(helpers, "connect")  # as if helpers/__init__.py lost its entry point
    with pytest.raises(RuntimeError, match="pattern 16 was NOT torn down"):
        runner.teardown_pattern("16", "local", "us-east-1", "dev")


# --- end to end with papermill ----------------------------------------------------------


def _has_python3_kernel() -> bool:
    """Whether papermill can start the kernel the runner asks for."""
    try:
        KernelSpecManager().get_kernel_spec(runner.KERNEL)
    except NoSuchKernel:
        return False
    return True


def no_leftovers(jobs: object) -> tuple[str, bool]:
    """Stands in for the runner's live leftover check (make test's course run covers it)."""
    return "course resources left: none", True


needs_kernel = pytest.mark.skipif(not _has_python3_kernel(), reason="no python3 kernel")


@needs_kernel
def test_runner_executes_reports_and_tears_down_every_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "notebooks"
    passing = make_notebook(
        folder / "16_ok.ipynb",
        "from pathlib import Path\nPath('cwd.txt').write_text(f'{BACKEND} {REPEAT}')",
        aws_only="raise RuntimeError('aws-only cells must not run locally')",
    )
    failing = make_notebook(folder / "17_bad.ipynb", "raise ValueError('broken step')")
    out_dir = tmp_path / "out"
    teardown = TeardownRecorder()
    argv = [str(passing), str(failing), "--output-dir", str(out_dir), "-p", "REPEAT", "5"]
    code = runner.main([*argv, "--timeout", "120"], teardown=teardown, leftovers=no_leftovers)

    assert code == 1
    assert (folder / "cwd.txt").read_text() == "local 5"  # ran in the notebook's folder
    assert (out_dir / "16_ok.ipynb").is_file() and (out_dir / "17_bad.log").is_file()
    assert [call[0] for call in teardown.calls] == ["16", "17"]
    summary = (out_dir / "summary.txt").read_text()
    assert re.search(r"^16_ok +passed +[\d.]+ +done$", summary, re.MULTILINE)
    assert re.search(r"^17_bad +failed +[\d.]+ +done +ValueError: broken step$", summary, re.M)
    assert "1 passed, 1 failed" in capsys.readouterr().out


def test_twice_keeps_then_reruns_and_tears_down_and_leftovers_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[Any, Path]] = []

    def execute(job: Job, out_dir: Path, timeout: float, label: str) -> Result:
        ran.append((job.params["CLEANUP"], out_dir))
        return Result(job.path.stem, "passed", 1.0)

    monkeypatch.setattr(runner, "execute", execute)
    notebook = make_notebook(tmp_path / "16_x.ipynb")
    out_dir = tmp_path / "out"
    teardown = TeardownRecorder()
    argv = [str(notebook), "--twice", "--output-dir", str(out_dir)]

    def left(jobs: object) -> tuple[str, bool]:
        return "course resources left:\nlambda-function  x", False

    assert runner.main(argv, teardown=teardown, leftovers=left) == 1
    assert ran == [(False, out_dir / runner.FIRST_RUN_DIR), (True, out_dir)]
    assert teardown.calls == [("16", "local", "eu-west-1", "dev")]  # after the second run only
    summary = (out_dir / "summary.txt").read_text()
    assert re.search(r"^16_x \(kept\) +passed .* skipped$", summary, re.MULTILINE)
    assert re.search(r"^16_x +passed .* done$", summary, re.MULTILINE)
    assert runner.main(argv, teardown=teardown, leftovers=no_leftovers) == 0


@needs_kernel
def test_runner_stops_a_notebook_at_its_timeout_and_still_tears_down(tmp_path: Path) -> None:
    slow = make_notebook(tmp_path / "16_slow.ipynb", "import time\ntime.sleep(600)")
    after = make_notebook(tmp_path / "17_after.ipynb", "x = 1")
    teardown = TeardownRecorder()
    out_dir = tmp_path / "out"
    argv = [str(slow), str(after), "--timeout", "8", "--output-dir", str(out_dir), "--fail-fast"]
    assert runner.main(argv, teardown=teardown, leftovers=no_leftovers) == 1
    summary = (out_dir / "summary.txt").read_text()
    assert re.search(r"^16_slow +timed out +[\d.]+ +done +no result within 8 s", summary, re.M)
    assert re.search(r"^17_after +not run", summary, re.MULTILINE)  # because of --fail-fast
    assert teardown.calls == [("16", "local", "eu-west-1", "dev")]
