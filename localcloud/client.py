"""What the course (and any other caller) may use of the local cloud, in one place.

Start and stop the daemon, find where it listens, and build images for its process runtime.
Everything else in this package is the emulator's inside; an import contract (`make lint`)
keeps callers to this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import trust
from .config import DEFAULT_REGION, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, state_dir
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
    "trust_environment",
    "up",
]


def endpoints(endpoint_url: str) -> dict[str, Any]:
    """The daemon's local listeners by service (load balancers, APIs), for `url_for`."""
    return call_endpoint(endpoint_url, "endpoints", timeout=10)


def trust_environment(state: Path | None = None) -> dict[str, str]:
    """SSL_CERT_FILE, REQUESTS_CA_BUNDLE and AWS_CA_BUNDLE for this process to trust the local
    cloud's TLS endpoints: the CAs it trusts now (the machine's, or the file such a variable
    already names) plus the local CA, so HTTPS anywhere else still verifies."""
    return trust.trust_environment(state or state_dir(), os.environ)
