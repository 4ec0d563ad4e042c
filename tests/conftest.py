"""Shared fixtures: a live local cloud in a private state directory, and a lab on it.

The fixtures that build things on it (images, clusters, roles ...) are in live_fixtures.py;
tests that use the daemon get the `localcloud` marker here, from the fixtures they ask for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from localcloud import daemon

pytest_plugins = ["live_fixtures"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need the session's daemon; put the files of long tests first."""
    for item in items:
        if "cloud" in getattr(item, "fixturenames", ()):  # so `-m "not localcloud"` skips them
            item.add_marker(pytest.mark.localcloud)
    # pytest-xdist (make test) hands out whole files in collection order: a file with a long
    # test handed out last would run on alone after the other processes have finished.
    long_files = {item.path for item in items if item.get_closest_marker("long")}
    items.sort(key=lambda item: item.path not in long_files)  # stable: file order is kept


@pytest.fixture(scope="session")
def cloud_state() -> Iterator[Path]:
    """A private state directory and a free port, so tests never touch a student's daemon."""
    # Not under pytest's 0700 temp root: as root, PostgreSQL runs as the `postgres` user,
    # which must be able to reach its data directory.
    state = Path(tempfile.mkdtemp(prefix="localcloud-state-"))
    state.chmod(0o755)
    settings = {
        "LOCALCLOUD_STATE_DIR": str(state),
        "LOCALCLOUD_PORT": "0",
        # Short enough for tests to watch idle workers being reaped and events retried.
        "LOCALCLOUD_LAMBDA_IDLE_SECONDS": "3",
        "LOCALCLOUD_LAMBDA_RETRY_DELAYS": "1,1",
        "LOCALCLOUD_DATA_API_TRANSACTION_IDLE_SECONDS": "2",
        "LOCALCLOUD_ECS_SAMPLE_SECONDS": "1",
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield state
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(state, ignore_errors=True)


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
