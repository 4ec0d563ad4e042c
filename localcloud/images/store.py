"""The local image store: `<state>/images/<digest hex>/`, one directory per built image."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import state_dir


class ImageBuildError(RuntimeError):
    """A build or push failed; the message holds the failing line and what to do."""


@dataclass(frozen=True)
class LocalBuild:
    """A process-runtime image put in the local ECR (the digest names its directory)."""

    digest: str
    size_bytes: int
    log: list[str] = field(default_factory=list, repr=False)
    cached: bool = False  # an unchanged build context reused its image


def images_root() -> Path:
    """The local image store: `<local cloud state>/images/`."""
    return state_dir() / "images"


def local_image_dir(digest: str) -> Path:
    """The directory of a local image: `<state>/images/<digest hex without sha256:>`."""
    hex_digest = digest.removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
        raise ValueError(f"not an image digest: {digest!r} (expected sha256:<64 hex digits>)")
    return images_root() / hex_digest


def load_local_image(digest: str) -> dict[str, Any] | None:
    """The image.json of a locally built image, or None if this machine has no such image."""
    try:
        return json.loads((local_image_dir(digest) / "image.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def show(log: list[str], line: str) -> None:
    """Print a progress line and keep it for the build's log."""
    line = line.rstrip()
    # pip's index lines say where this machine downloads from: noise in a notebook's output.
    if not line or line.lstrip().startswith(("Looking in indexes", "Looking in links")):
        return
    print(line, flush=True)
    log.append(line)
