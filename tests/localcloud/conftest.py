"""Fixtures for tests that run engine servers directly, without a daemon."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.engines import EngineManager, kill_leftovers


@pytest.fixture
def root() -> Iterator[Path]:
    """An engines root the postgres user can reach (pytest's tmp_path sits under a 0700 dir)."""
    base = Path(tempfile.mkdtemp(prefix="lc-engines-"))
    base.chmod(0o755)
    yield base / "engines"
    kill_leftovers(base / "engines")  # whatever a failing test left running
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def manager(root: Path) -> Iterator[EngineManager]:
    """An engine manager on that root; every server it started is wiped afterwards."""
    m = EngineManager(root)
    yield m
    m.wipe()
