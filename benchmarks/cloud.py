"""A private local cloud for a benchmark run: its own state directory and a free port."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def private_lab() -> Iterator[Any]:
    """A lab on a daemon of its own, so a running course daemon is not disturbed; stopped after."""
    import helpers
    from localcloud import daemon

    os.environ["LOCALCLOUD_PORT"] = "0"
    with tempfile.TemporaryDirectory() as state:
        # As root, PostgreSQL runs as the `postgres` user, which must reach its data directory.
        os.chmod(state, 0o755)
        os.environ["LOCALCLOUD_STATE_DIR"] = state
        lab = helpers.connect("local", run_id="bench", quiet=True)
        try:
            yield lab
        finally:
            daemon.down()


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: the figures are only as quiet as it."""
    return [round(load, 2) for load in os.getloadavg()]
