"""Run the course notebooks headless with papermill, tear each pattern down, and report.

    python -m helpers.runner [NOTEBOOK ...] [--backend local|aws] [-p NAME VALUE]...
        [--timeout SECONDS] [--output-dir build/executed] [--keep-going | --fail-fast]
        [--timing local|aws] [--twice] [--quick]

NOTEBOOK is a path, a file name, a stem or just the number ("16"); default: every numbered
notebook in notebooks/. Each notebook runs in its own papermill process, so a hung kernel
can be stopped without taking the runner down, and its teardown still happens.

--twice runs each notebook two times in a row: first with CLEANUP False, keeping what it
made, then again on top of those resources (every step must find or reuse them) and tearing
down. --quick gives the notebooks with load bursts shorter ones (QUICK_PARAMETERS), for
test runs. Resources left behind after the run fail it.
"""

from __future__ import annotations

import argparse
import ast
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from helpers.notebooks import (
    course_notebooks,
    declared_parameters,
    notebook_number,
    read,
    without_aws_only_cells,
    write,
)
from helpers.papermill_process import Papermill

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL = "python3"
DEFAULT_REGION = "us-east-1"
HEARTBEAT_SECONDS = 60.0
INTERRUPT_GRACE_SECONDS = 20.0  # time for nbclient to shut its kernel down after SIGINT
ERROR_WIDTH = 100
STATUSES = ("passed", "failed", "timed out", "not run")
FIRST_RUN_DIR = "first-run"  # where --twice keeps the first run's executed notebooks

# Shorter load bursts for test runs (--quick); -p values still win.
QUICK_PARAMETERS: dict[str, dict[str, str]] = {
    "18_fargate_http_service": {"LOAD_REQUESTS": "100"},
    "19_aurora_data_api": {"LOAD_SECONDS": "5", "LOAD_CALLERS": "2"},
    "20_rds_proxy": {"STORM_EXTRA": "15"},
    "21_dynamodb_streams": {"LOAD_SECONDS": "5"},
    "22_fargate_aurora_proxy": {"LOAD_REQUESTS": "200", "RACE_CLIENTS": "10"},
    "23_elasticache_cache_aside": {"LATENCY_SAMPLES": "5"},
    "24_rest_api_postgres": {"LOAD_REQUESTS": "50"},
}

Teardown = Callable[[str, str, str, str], None]  # (pattern, backend, region, run_id)


@dataclass
class Result:
    """The outcome of one notebook: status, duration, teardown outcome and first error line."""

    notebook: str
    status: str  # one of STATUSES
    duration: float = 0.0
    teardown: str = "-"  # done | skipped | failed | - (not reached)
    error: str = ""


@dataclass(frozen=True)
class Job:
    """One notebook, the parameters injected into it and the context its teardown needs."""

    path: Path
    params: dict[str, Any]
    region: str
    run_id: str


def parse_value(text: str) -> Any:
    """A -p value as a Python literal when it is one ("3", "True", "[1, 2]"), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; -p values stay raw text until a notebook's types are known."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("notebooks", nargs="*", metavar="NOTEBOOK", help="default: all numbered notebooks")
    add("--backend", choices=("local", "aws"), help="default: local")
    add("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    add("--timeout", type=float, default=900.0, metavar="SECONDS", help="per notebook")
    add("--output-dir", type=Path, default=Path("build/executed"), metavar="DIR")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--keep-going", dest="fail_fast", action="store_false", help="(default)")
    order.add_argument("--fail-fast", dest="fail_fast", action="store_true")
    add("--i-accept-aws-costs", dest="accept_costs", action="store_true")
    add("--twice", action="store_true", help="each notebook twice: keep, then rerun and tear down")
    add("--quick", action="store_true", help="shorter load bursts (QUICK_PARAMETERS)")
    add(
        "--timing",
        choices=("local", "aws"),
        help="local backend: 'aws' runs the local cloud with AWS's timing rules (slower, stricter)",
    )
    parser.set_defaults(fail_fast=False)
    args = parser.parse_args(argv)
    args.parameters = dict(args.parameter)
    from_params = args.parameters.pop("BACKEND", None)
    if args.backend and from_params and args.backend != from_params:
        parser.error(f"--backend {args.backend} contradicts -p BACKEND {from_params}")
    args.backend = args.backend or from_params or "local"
    if args.backend not in ("local", "aws"):
        parser.error(f"backend must be 'local' or 'aws', not {args.backend!r}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.twice and "CLEANUP" in args.parameters:
        parser.error("--twice sets CLEANUP itself (False, then True); drop -p CLEANUP")
    return args


def consent_refusal(args: argparse.Namespace) -> str | None:
    """Why an AWS run must not start (None when it may): costs need explicit consent."""
    if args.backend != "aws" or args.accept_costs:
        return None
    if parse_value(args.parameters.get("CONSENT_TO_COSTS", "")) is True:
        return None
    return (
        "Refusing to run on AWS: the notebooks create billable resources in your account "
        "(each notebook's 'Runtime and cost' section estimates them) and a failed run can "
        "leave some behind.\nIf you accept the costs, run again with -p CONSENT_TO_COSTS True "
        "(or --i-accept-aws-costs)."
    )


def resolve_notebooks(names: Sequence[str], folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks to run: the named ones in the order given, or all of them in order."""
    available = course_notebooks(folder)
    if not names and not available:
        raise ValueError(f"no numbered notebooks in {folder}")
    chosen = []
    for name in names:
        if Path(name).is_file():
            chosen.append(Path(name).resolve())
            continue
        matches = [p for p in available if name in (p.name, p.stem, notebook_number(p))]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in available) or "none"
            raise ValueError(f"{name!r} names {len(matches)} notebooks; available: {known}")
        chosen.append(matches[0])
    return chosen or available


def plan_job(
    nb_path: Path, args: argparse.Namespace, session_run_id: str, cleanup: bool | None = None
) -> Job:
    """The parameters for one notebook (BACKEND, -p values, a RUN_ID if its own is empty)."""
    declared = declared_parameters(read(nb_path))
    defaults = {name: p.default for name, p in declared.items()}
    params: dict[str, Any] = {"BACKEND": args.backend}
    given = dict(QUICK_PARAMETERS.get(nb_path.stem, {})) if args.quick else {}
    given.update(args.parameters)
    if cleanup is not None:
        given["CLEANUP"] = str(cleanup)
    for name, raw in given.items():
        value = parse_value(raw)
        # "-p RUN_ID 2024" must stay the string that a `str` parameter expects.
        is_text = name in declared and declared[name].annotation == "str"
        params[name] = raw if is_text and not isinstance(value, str) else value
    if args.backend == "aws" and args.accept_costs:
        params["CONSENT_TO_COSTS"] = True
    # An empty RUN_ID would let the notebook invent one the runner cannot tear down.
    if "RUN_ID" not in params and not defaults.get("RUN_ID"):
        params["RUN_ID"] = session_run_id
    region = params.get("REGION", defaults.get("REGION") or DEFAULT_REGION)
    return Job(nb_path, params, str(region), str(params.get("RUN_ID", defaults.get("RUN_ID"))))


def _first_line(text: str) -> str:
    """The first non-empty line of text, shortened for the summary table."""
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def first_error(output_path: Path, log_text: str) -> str:
    """The first error of a failed run: the failing cell's exception, else the log's last one."""
    if output_path.exists():
        for cell in read(output_path).cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return _first_line(f"{out.get('ename')}: {out.get('evalue')}")
    lines = [x for x in log_text.splitlines() if x.strip()]
    for line in reversed(lines):  # a traceback in the log ends with "SomeError: message"
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) and " " not in head:
            return _first_line(line)
    return _first_line(lines[-1]) if lines else "no output; see the log"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Interrupt papermill so nbclient shuts its kernel down; kill it if it does not exit."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(INTERRUPT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the kernel exits once its parent is gone
        proc.wait()
    except ProcessLookupError:
        pass


def _plain(value: Any) -> Any:
    """Tuples and sets as lists, which YAML (and so papermill) can carry."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        return [_plain(v) for v in value]
    return value


def prepare_input(job: Job, out_dir: Path) -> Path:
    """The notebook papermill reads: on the local backend, a copy without aws-only cells."""
    if job.params["BACKEND"] == "aws":
        return job.path
    path = out_dir / ".inputs" / job.path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(without_aws_only_cells(read(job.path)), path)
    return path


PAPERMILL = Papermill()


def execute(job: Job, out_dir: Path, timeout: float, label: str) -> Result:
    """Run one notebook with papermill in a child process, within the wall-clock timeout."""
    output_path, log_path = out_dir / job.path.name, out_dir / f"{job.path.stem}.log"
    output_path.unlink(missing_ok=True)  # an old output must not lend this run its error
    log_path.write_bytes(b"")  # nor an old log: the child opens it only once it runs
    source = prepare_input(job, out_dir)
    command = [str(source), str(output_path)]
    command += ["--log-output", "--no-progress-bar"]
    command += ["--execution-timeout", str(max(1, round(timeout)))]
    # YAML rather than -p, so lists, None and floats such as 1e-05 keep their types.
    command += ["--parameters_yaml", yaml.safe_dump(_plain(job.params))]
    start, status = time.monotonic(), "timed out"
    proc = PAPERMILL.start(command, log_path, kernel=KERNEL, directory=job.path.parent)
    try:
        while (remaining := timeout - (time.monotonic() - start)) > 0:
            try:
                status = "passed" if proc.wait(min(HEARTBEAT_SECONDS, remaining)) == 0 else ""
                break
            except subprocess.TimeoutExpired:
                if (elapsed := time.monotonic() - start) < timeout:
                    print(f"{label}: still running, {elapsed:.0f} s; log: {log_path}", flush=True)
    finally:
        if proc.poll() is None:
            _stop(proc)
    log_text = log_path.read_text(errors="replace")
    if not status:
        status = "timed out" if "CellTimeoutError" in log_text else "failed"
    result = Result(job.path.stem, status, time.monotonic() - start)
    if status == "timed out":
        result.error = f"no result within {timeout:.0f} s; see {log_path}"
    elif status == "failed":
        result.error = first_error(output_path, log_text)
    return result


def teardown_pattern(pattern: str, backend: str, region: str, run_id: str) -> None:
    """Delete a pattern's resources with the course's own helpers.cleanup.teardown."""
    try:  # imported here so the runner works (and says so) while helpers is broken
        from helpers import cleanup, connect
    except ImportError as exc:
        raise RuntimeError(
            f"cannot import helpers.connect/helpers.cleanup ({exc}): pattern {pattern} was NOT "
            "torn down; run notebooks/99_cleanup.ipynb once helpers imports again"
        ) from exc
    lab = connect(backend, region=region, run_id=run_id)
    cleanup.teardown(lab, pattern=pattern)


def run_teardown(job: Job, result: Result, teardown: Teardown, label: str) -> None:
    """Tear a pattern down; a failure fails the notebook but never hides the notebook's error."""
    pattern = notebook_number(job.path)
    print(f"{label}: tearing down pattern {pattern} (run_id {job.run_id!r})", flush=True)
    try:
        teardown(pattern, job.params["BACKEND"], job.region, job.run_id)
        result.teardown = "done"
    except Exception as exc:  # whatever went wrong, report it and go on with the course
        message = _first_line(f"{type(exc).__name__}: {exc}")
        print(f"{label}: TEARDOWN FAILED: {message}", flush=True)
        result.teardown = "failed"
        if result.status == "passed":
            result.status, result.error = "failed", f"teardown: {message}"


def run_one(
    job: Job, args: argparse.Namespace, teardown: Teardown, label: str, out_dir: Path | None = None
) -> Result:
    """Execute one notebook and then, whatever happened, tear its pattern down."""
    print(f"{label}: running with {job.params}", flush=True)
    result = Result(job.path.stem, "failed", error="the runner stopped during this notebook")
    try:
        result = execute(job, out_dir or args.output_dir, args.timeout, label)
    except Exception as exc:  # a broken run of one notebook must not end the course run
        result.error = _first_line(f"runner: {type(exc).__name__}: {exc}")
    finally:
        if job.params.get("CLEANUP") is False:
            result.teardown = "skipped"
        else:
            run_teardown(job, result, teardown, label)
    error = f": {result.error}" if result.error else ""
    print(f"{label}: {result.status} in {result.duration:.1f} s{error}", flush=True)
    return result


def leftover_report(jobs: Sequence[Job]) -> tuple[str, bool]:
    """Course resources still present for the runs just made, and whether there are none."""
    try:
        from helpers import cleanup, connect
        from helpers.report import text_table
    except ImportError as exc:
        return f"course resources left: unknown (cannot import helpers: {exc})", False
    found = []
    torn_down = {
        (j.params["BACKEND"], j.region, j.run_id)
        for j in jobs
        if j.params.get("CLEANUP") is not False
    }
    if not torn_down:
        return "course resources left: not checked (every run kept them: CLEANUP False)", True
    for backend, region, run_id in sorted(torn_down):
        lab = connect(backend, region=region, run_id=run_id, quiet=True)
        found += [r.row() for r in cleanup.find_resources(lab)]
    return "course resources left: " + (
        "none" if not found else f"\n{text_table(found)}"
    ), not found


def format_summary(results: Sequence[Result]) -> str:
    """A plain-text table of the results followed by a one-line tally and the total time."""
    header = ("notebook", "status", "duration s", "teardown", "error")
    rows = [(r.notebook, r.status, f"{r.duration:.1f}", r.teardown, r.error) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        """One aligned row; durations are right-aligned, the error column is free-width."""
        name, status, duration, teardown, error = row
        cells = [name.ljust(widths[0]), status.ljust(widths[1]), duration.rjust(widths[2])]
        return "  ".join([*cells, teardown.ljust(widths[3]), error]).rstrip()

    rule = "  ".join("-" * w for w in [*widths, len(header[4])])
    tally = ", ".join(f"{n} {s}" for s in STATUSES if (n := sum(r.status == s for r in results)))
    if tally:  # the figure `make course` is timed by (issue 18: at most 180 s)
        tally += f"; {sum(r.duration for r in results):.1f} s of notebook time"
    return "\n".join([line(header), rule, *map(line, rows), "", tally or "nothing was run"])


def main(
    argv: Sequence[str] | None = None,
    teardown: Teardown = teardown_pattern,
    leftovers: Callable[[Sequence[Job]], tuple[str, bool]] = leftover_report,
) -> int:
    """Run the chosen notebooks, print a summary table, and return the exit status."""
    args = parse_args(argv)
    if refusal := consent_refusal(args):
        print(refusal, file=sys.stderr)
        return 2
    try:
        notebooks = resolve_notebooks(args.notebooks)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.timing:
        if args.backend != "local":
            print("error: --timing applies to the local cloud only", file=sys.stderr)
            return 2
        # The notebooks' kernels inherit it; the local cloud restarts if its profile differs.
        os.environ["LOCALCLOUD_TIMING"] = args.timing
    args.output_dir = args.output_dir.resolve()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    session_run_id = "r" + secrets.token_hex(3)  # short and lowercase: valid in any AWS name
    results: list[Result] = []
    jobs: list[Job] = []
    # --twice: (keep, first-run folder) then (tear down, output folder); else one plain run.
    passes = [(False, args.output_dir / FIRST_RUN_DIR), (True, args.output_dir)]
    try:
        for i, nb_path in enumerate(notebooks, 1):
            for cleanup, out_dir in passes if args.twice else [(None, args.output_dir)]:
                name = nb_path.stem + (" (kept)" if cleanup is False else "")
                if args.fail_fast and any(r.status != "passed" for r in results):
                    results.append(Result(name, "not run"))
                    continue
                out_dir.mkdir(parents=True, exist_ok=True)
                jobs.append(plan_job(nb_path, args, session_run_id, cleanup))
                label = f"[{i}/{len(notebooks)}] {name}"
                results.append(run_one(jobs[-1], args, teardown, label, out_dir))
                results[-1].notebook = name
    finally:
        PAPERMILL.close()
    report, clean = leftovers(jobs)
    summary = f"{format_summary(results)}\n\n{report}"
    (args.output_dir / "summary.txt").write_text(summary + "\n")
    print(f"\n{summary}\nExecuted notebooks, logs and summary.txt: {args.output_dir}")
    return 0 if clean and all(r.status == "passed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
