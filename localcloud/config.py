"""Where the local cloud keeps its state and which fixed values it presents as AWS."""

from __future__ import annotations

import os
from pathlib import Path

# moto's well-known fake account: the only 12-digit account id allowed in committed files.
FAKE_ACCOUNT_ID = "123456789012"
DUMMY_ACCESS_KEY_ID = "test"
DUMMY_SECRET_ACCESS_KEY = "test"  # a placeholder the local cloud accepts, not a secret
DEFAULT_REGION = "us-east-1"
DEFAULT_PORT = 4766
HOST = "127.0.0.1"  # everything the local cloud serves binds to loopback only

REPO_ROOT = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    """The git-ignored directory holding the daemon's pid, port, logs and engine data."""
    configured = os.environ.get("LOCALCLOUD_STATE_DIR")
    path = Path(configured) if configured else REPO_ROOT / ".localcloud"
    path.mkdir(parents=True, exist_ok=True)
    return path


def configured_port() -> int:
    """The port `up` tries first (LOCALCLOUD_PORT overrides it); if busy, a free one is used."""
    return int(os.environ.get("LOCALCLOUD_PORT", DEFAULT_PORT))


def daemon_info_path(state: Path) -> Path:
    """The file in which the daemon tells other processes its pid and port."""
    return state / "daemon.json"


def code_version() -> str:
    """A fingerprint of the local cloud's source files, to notice a daemon running old code."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(f"{path.relative_to(REPO_ROOT)}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()[:16]
