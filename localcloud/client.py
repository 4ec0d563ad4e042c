"""What the course (and any other caller) may use of the local cloud, in one place.

Start and stop the daemon, find where it listens, and build images for its process runtime.
Everything else in this package is the emulator's inside; an import contract (`make lint`)
keeps callers to this module.
"""

from __future__ import annotations

from typing import Any

from .config import DEFAULT_REGION, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from .daemon import (
    DaemonError,
    DaemonInfo,
    call_endpoint,
    down,
    running,
    status,
    status_text,
    up,
)
from .engines.install import missing_packages as missing_engine_packages
from .images import ImageBuildError, LocalBuild
from .images import build as build_local_image
from .images.store import show as show_build_line

__all__ = [
    "DEFAULT_REGION",
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "DaemonError",
    "DaemonInfo",
    "ImageBuildError",
    "LocalBuild",
    "build_local_image",
    "down",
    "endpoints",
    "missing_engine_packages",
    "running",
    "show_build_line",
    "status",
    "status_text",
    "up",
]


def endpoints(endpoint_url: str) -> dict[str, Any]:
    """The daemon's local listeners by service (load balancers, APIs), for `url_for`."""
    return call_endpoint(endpoint_url, "endpoints", timeout=10)
