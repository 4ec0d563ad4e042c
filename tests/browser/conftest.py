"""Fixtures of the browser test: one JupyterLab on a copy of the course, one headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_page import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, JupyterLab, copy_course
from playwright.sync_api import Browser, sync_playwright

SCREENSHOTS = REPO_ROOT / "build" / "browser"


@pytest.fixture(scope="session")
def course_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the course with its notebooks' outputs cleared, as a fresh clone has it."""
    root = tmp_path_factory.mktemp("course")
    copy_course(root)
    return root


@pytest.fixture(scope="session")
def jupyterlab(course_copy: Path) -> Iterator[JupyterLab]:
    """JupyterLab rooted at the copy, with a private local cloud for its kernels."""
    lab = JupyterLab(course_copy)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """build/browser/, emptied: the screenshots of this run, for a reviewer."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS
