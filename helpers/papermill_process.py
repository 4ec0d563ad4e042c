"""The runner's papermill processes, each made ready while the notebook before it runs.

A notebook's papermill process spends about a second before its first cell: importing
papermill (most of it nbformat's schema validator) and starting a kernel, which imports
ipykernel. The runner keeps one spare process that does both ahead of time; when the next
notebook starts, the spare gets its arguments and log path on stdin and runs it at once.

Its kernel is started in the directory and with the kernel name of the notebook before
(the course's notebooks all share them) and must answer before it is used; a notebook
elsewhere, or a kernel that did not answer, gets a kernel papermill starts, as usual. What
the kernel writes to its stdout and stderr is added to the notebook's log at the end. The
kernel is shut down at once after the last cell rather than asked to exit (about 0.6 s):
the course's kernels have nothing left to do by then.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXIT_GRACE_SECONDS = 20.0  # for a spare to shut its kernel down and exit

# The child's program. It imports papermill and starts a kernel, then reads one request:
# [papermill argv, log path, kernel name, directory]. An import failure goes to the log.
_CHILD = r"""
import contextlib, json, os, sys, tempfile, traceback
kernel_name, kernel_dir = sys.argv[1], sys.argv[2]
km, kernel_output, notes = None, tempfile.TemporaryFile(), []
try:
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from papermill.cli import papermill
    from papermill.engines import NBClientEngine, papermill_engines
except Exception:
    papermill, failure = None, traceback.format_exc()
else:

    def shut_down():
        global km
        if km is not None:
            with contextlib.suppress(Exception):
                run_sync(km.shutdown_kernel)(now=True)
        km = None

    try:
        km = AsyncKernelManager(kernel_name=kernel_name)
        # nbclient's own default: no IPython history file for executed notebooks
        history = "--HistoryManager.hist_file=:memory:"
        run_sync(km.start_kernel)(
            cwd=kernel_dir, extra_arguments=[history], stdout=kernel_output, stderr=kernel_output
        )
        client = km.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=30)
        finally:
            client.stop_channels()
    except Exception:
        notes.append("kernel started ahead failed; papermill starts one:\n")
        notes.append(traceback.format_exc())
        shut_down()

    class Prestarted(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            return super().execute_managed_notebook(
                nb_man, kernel_name, km=km, shutdown_kernel="immediate", **kwargs
            )

    papermill_engines.register("prestarted", Prestarted)


def copy_kernel_output():
    # what the kernel wrote to its stdout and stderr, where papermill's kernels write it
    kernel_output.seek(0)
    sys.stderr.write(kernel_output.read().decode(errors="replace") + "".join(notes))


request = sys.stdin.readline()
if not request:
    if papermill is not None:
        shut_down()
    sys.exit(0)  # the runner had no more notebooks
argv, log, wanted_kernel, wanted_dir = json.loads(request)
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 1)
os.dup2(fd, 2)
if papermill is None:
    sys.exit(failure)
if (wanted_kernel, wanted_dir) != (kernel_name, kernel_dir):
    shut_down()
try:
    engine = ["--engine", "prestarted", "--kernel", wanted_kernel, "--cwd", wanted_dir]
    papermill.main(args=[*argv, *engine], prog_name="papermill")
finally:
    shut_down()
    copy_kernel_output()
"""


class Papermill:
    """Starts papermill child processes, each with papermill imported and a kernel running."""

    def __init__(self) -> None:
        self._spare: subprocess.Popen[bytes] | None = None

    def _child(self, kernel: str, directory: str) -> subprocess.Popen[bytes]:
        # A session of its own, so a timeout can interrupt papermill without hitting us.
        return subprocess.Popen(
            [sys.executable, "-u", "-c", _CHILD, kernel, directory],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start(
        self, argv: list[str], log_path: Path, *, kernel: str, directory: Path
    ) -> subprocess.Popen[bytes]:
        """Papermill running `argv` with this kernel in this directory, writing to `log_path`.

        The child adds papermill's --kernel, --cwd and --engine options, so `argv` must not
        have them. The next child starts at once, for the same kernel and directory.
        """
        wanted = (kernel, str(directory))
        proc = self._spare or self._child(*wanted)
        self._spare = None
        assert proc.stdin is not None
        proc.stdin.write(json.dumps([argv, str(log_path), *wanted]).encode() + b"\n")
        proc.stdin.close()
        self._spare = self._child(*wanted)
        return proc

    def close(self) -> None:
        """End the spare child (and its kernel), which no notebook needs any more."""
        if self._spare is not None:
            assert self._spare.stdin is not None
            self._spare.stdin.close()  # it reads an empty line, stops its kernel and exits
            try:
                self._spare.wait(EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._spare.kill()
                self._spare.wait()
            self._spare = None
