"""JupyterLab as a student opens it, driven by headless Chromium: Run All, then read the page.

`JupyterLab` serves a copy of the course (notebooks without their outputs, images, code)
rooted the way `make lab` roots it, with a private local cloud for its kernels.
`run_notebook` opens one notebook in a fresh page, runs all its cells from the Run menu and
returns what a student would see wrong: error outputs, stderr boxes, cells that did not
run, images that did not load, missing figures, absolute machine paths.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Browser, Page

from helpers.notebooks import without_aws_only_cells

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright's own download cannot run
# The flags that let Chromium run headless as root in a container, offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT = 900  # seconds for one notebook's Run All (the slowest takes about a minute)
PROGRESS_SELECTOR = ".jp-OutputArea-output .widget-hprogress"
# Records every progress widget that appears, since bars that finish remove themselves.
WATCH_PROGRESS = (
    "window.__progressSeen = 0;"
    "new MutationObserver(() => {"
    f"  if (document.querySelector('{PROGRESS_SELECTOR}')) {{ window.__progressSeen += 1; }}"
    "}).observe(document, {childList: true, subtree: true});"
)


@dataclass
class Result:
    """What one Run All showed: the problems found and what was seen along the way."""

    notebook: str
    problems: list[str] = field(default_factory=list)
    code_cells: int = 0
    figures: int = 0
    progress_widgets_seen: bool = False
    screenshots: list[Path] = field(default_factory=list)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_course(root: Path) -> None:
    """The course as a fresh clone has it, with every notebook's outputs cleared.

    `committed/` holds the notebooks as committed, outputs included: what a student sees
    on opening one before running anything (its diagrams resolve like the notebooks').
    """
    for folder in ("images", "code", "notebooks"):
        shutil.copytree(
            REPO_ROOT / folder, root / ("committed" if folder == "notebooks" else folder)
        )
    (root / "notebooks").mkdir()
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        notebook = without_aws_only_cells(nbformat.read(str(path), as_version=4))
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, str(root / "notebooks" / path.name))


def expected_figures(path: Path) -> int:
    """How many images the committed notebook's outputs hold: the figures a run must draw."""
    notebook = nbformat.read(str(path), as_version=4)
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


class JupyterLab:
    """A JupyterLab server on a free loopback port, rooted at a copy of the course."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.scratch = Path(tempfile.mkdtemp(prefix="browser-test-"))
        # PostgreSQL, started as the `postgres` user when root, must reach its data directory.
        state = self.scratch / "localcloud"
        state.mkdir()
        self.scratch.chmod(0o755)
        self.env = {
            **os.environ,
            "LOCALCLOUD_STATE_DIR": str(state),
            "LOCALCLOUD_PORT": "0",
            "JUPYTER_CONFIG_DIR": str(self.scratch / "config"),
            "IPYTHONDIR": str(self.scratch / "ipython"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The server command: `make lab`'s, on this port with this token and fresh settings."""
        return [
            str(Path(sys.executable).parent / "jupyter"),
            "lab",
            "--no-browser",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--LabApp.user_settings_dir={self.scratch / 'settings'}",
            f"--LabApp.workspaces_dir={self.scratch / 'workspaces'}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]

    def start(self) -> None:
        """Start the server and wait until it answers."""
        log = (self.scratch / "server.log").open("wb")
        self.process = subprocess.Popen(
            self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_tail()}")
            try:
                self.api("GET", "status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer in 60 s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the server and its kernels, then the local cloud those kernels started."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.send_signal(signal.SIGINT)  # the second one skips the prompt
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(
            [sys.executable, "-m", "localcloud", "down"],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.scratch, ignore_errors=True)

    def log_tail(self) -> str:
        """The end of the server's log, for failure messages."""
        path = self.scratch / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def api(self, method: str, path: str) -> Any:
        """One call of the server's REST API."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel, so each notebook starts with a fresh one."""
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")

    def url(self, notebook: str) -> str:
        """The address that opens a notebook in a reset workspace."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?reset&token={self.token}"


def run_notebook(
    browser: Browser, lab: JupyterLab, notebook: str, screenshots: Path, figures: int = 0
) -> Result:
    """Open `notebook` (a path under the server root), Run All, and check the page."""
    result = Result(notebook)
    name = Path(notebook).stem
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(WATCH_PROGRESS)
    try:
        page.goto(lab.url(notebook))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        # Run All before the kernel is connected would run nothing: wait for "| Idle".
        page.wait_for_selector("#jp-main-statusbar :text('| Idle')", timeout=120_000)
        _run_all(page, result, screenshots / f"{name}-progress.png")
        _check(page, lab, result, figures)
        _screenshots(page, result, screenshots, name)
    finally:
        page.close()
        lab.shutdown_kernels()
    return result


def open_notebook(browser: Browser, lab: JupyterLab, notebook: str, figures: int = 0) -> Result:
    """Open `notebook` without running it, and check what its saved outputs show."""
    result = Result(notebook)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.url(notebook))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        page.wait_for_selector("#jp-main-statusbar :text('| Idle')", timeout=120_000)
        _check(page, lab, result, figures, ran=False)
    finally:
        page.close()
        lab.shutdown_kernels()
    return result


def _run_all(page: Page, result: Result, progress_shot: Path) -> None:
    """Run > Run All Cells, and wait until no cell is queued or running."""
    page.click("#jp-MainMenu .lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    deadline = time.monotonic() + RUN_TIMEOUT
    bar_since: float | None = None
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        busy = any("*" in prompt for prompt in prompts)
        # The copy has no outputs: a numbered prompt can only come from this run.
        started = busy or any(re.search(r"\d", p) for p in prompts)
        bar = page.query_selector(PROGRESS_SELECTOR)
        if bar is None:
            bar_since = None
        else:
            bar_since = bar_since or time.monotonic()
            # Photograph a bar that has been filling for a while, once per notebook.
            if progress_shot not in result.screenshots and time.monotonic() - bar_since > 1.5:
                _photograph_progress(page, bar, progress_shot, result)
        # The kernel's "| Idle" too: a queued cell JupyterLab has not drawn yet shows no [*].
        idle = page.query_selector("#jp-main-statusbar :text('| Idle')") is not None
        if started and not busy and idle:
            return
        if not started and time.monotonic() > deadline - RUN_TIMEOUT + 60:
            result.problems.append("Run All did not start a single cell in 60 s")
            return
        time.sleep(0.5)
    result.problems.append(f"Run All did not finish in {RUN_TIMEOUT} s")


def _photograph_progress(page: Page, bar: Any, path: Path, result: Result) -> None:
    """A screenshot of the page with the progress bar in view."""
    try:  # the bar may finish and vanish between finding and photographing it
        bar.scroll_into_view_if_needed(timeout=2000)
        page.screenshot(path=str(path))
        result.screenshots.append(path)
    except Exception:  # noqa: BLE001 - a missed photo is not a failure of the notebook
        pass


def _prompts(page: Page) -> list[str]:
    """The input prompts of the open notebook's code cells ('[3]:', '[*]:', '[ ]:')."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt",
        "nodes => nodes.map(n => n.textContent.trim())",
    )


_PAGE_STATE = """
root => {
  const text = n => (n.innerText || '').trim();
  const outputs = [...root.querySelectorAll('.jp-OutputArea-output')];
  return {
    stderr: outputs.filter(n => n.getAttribute('data-mime-type') ===
        'application/vnd.jupyter.stderr').map(text),
    images: [...root.querySelectorAll('.jp-MarkdownCell img')].map(i => ({
        src: new URL(i.src).pathname, loaded: i.complete && i.naturalWidth > 0})),
    figures: [...root.querySelectorAll('.jp-OutputArea-output img')].filter(
        i => i.complete && i.naturalWidth > 0).length,
    widgetErrors: outputs.map(text).filter(t => t.includes('Error displaying widget')),
    outputText: outputs.map(text).join('\\n'),
    news: [...document.querySelectorAll('.Toastify__toast')].map(text)
        .filter(t => t.includes('Jupyter news')),
  };
}
"""


def _check(page: Page, lab: JupyterLab, result: Result, figures: int, ran: bool = True) -> None:
    """Read the page and note every problem a student would see."""
    # Scrolling each cell into view makes JupyterLab render the ones it defers (on a busy
    # machine even some of a short notebook's): before the prompts are read, or a cell that
    # never ran could be missing from them.
    for cell in page.query_selector_all(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"):
        cell.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    prompts = _prompts(page)
    result.code_cells = len(prompts)
    expected = [f"[{n}]:" for n in range(1, len(prompts) + 1)]
    if ran and prompts != expected:
        not_run = [i for i, p in enumerate(prompts) if not re.search(r"\d", p)]
        result.problems.append(
            f"not every code cell ran in order: prompts {prompts} (not run: code cells {not_run})"
        )
    _wait_for_images(page)
    state = page.eval_on_selector(".jp-NotebookPanel:not(.lm-mod-hidden)", _PAGE_STATE)
    result.figures = state["figures"]
    result.progress_widgets_seen = bool(page.evaluate("window.__progressSeen"))
    for box in state["stderr"]:  # JupyterLab draws errors and stderr alike, as red boxes
        kind = "error" if "Error" in box[:400] else "stderr"
        result.problems.append(f"{kind} box: {box[:300]}")
    for image in state["images"]:
        if not image["loaded"]:
            result.problems.append(f"markdown image did not load: {image['src']}")
    if state["figures"] < figures:
        result.problems.append(f"{state['figures']} figures rendered, {figures} expected")
    for error in state["widgetErrors"]:
        result.problems.append(f"widget error: {error[:200]}")
    machine_paths = {str(lab.root), str(lab.scratch), str(REPO_ROOT), sys.prefix, str(Path.home())}
    for path in machine_paths - {"/"}:
        if path in state["outputText"]:
            result.problems.append(f"an output shows the machine path {path}")
    if state["news"]:
        result.problems.append("JupyterLab's news pop-up is shown")


def _wait_for_images(page: Page) -> None:
    """Give markdown images and figures a moment to finish loading."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-NotebookPanel img')].every(i => i.complete)",
        timeout=15_000,
    )


def _screenshots(page: Page, result: Result, folder: Path, name: str) -> None:
    """The diagram, the first figure and table, and the last code cell, for a reviewer."""
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    shots = {
        "diagram": f"{panel} .jp-MarkdownCell img",
        "chart": f"{panel} .jp-OutputArea-output img",
        "table": f"{panel} .jp-OutputArea-output table",
        "last-cell": f"{panel} .jp-CodeCell",
    }
    for kind, selector in shots.items():
        found = page.query_selector_all(selector)
        if not found:
            continue
        element = found[-1] if kind == "last-cell" else found[0]
        element.scroll_into_view_if_needed()
        path = folder / f"{name}-{kind}.png"
        element.screenshot(path=str(path))
        result.screenshots.append(path)
