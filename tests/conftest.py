"""Shared fixtures: a live local cloud in a private state directory, and a lab on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from helpers.localcloud import daemon


@pytest.fixture(scope="session")
def cloud_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private state directory and a free port, so tests never touch a student's daemon."""
    state = tmp_path_factory.mktemp("localcloud-state")
    saved = {k: os.environ.get(k) for k in ("LOCALCLOUD_STATE_DIR", "LOCALCLOUD_PORT")}
    os.environ["LOCALCLOUD_STATE_DIR"] = str(state)
    os.environ["LOCALCLOUD_PORT"] = "0"
    yield state
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def cloud(cloud_state: Path) -> Iterator[daemon.DaemonInfo]:
    """A running local cloud daemon for the whole test session; stopped at the end."""
    info = daemon.up(quiet=True)
    yield info
    daemon.down()


@pytest.fixture
def lab(cloud: daemon.DaemonInfo) -> helpers.Lab:
    """A lab on the test daemon, with a run id of its own."""
    return helpers.connect("local", run_id="pytest", quiet=True)
