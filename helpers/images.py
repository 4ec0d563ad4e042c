"""Container images: the Docker engine the course builds with (AWS backend).

SageMaker Studio exposes Docker Engine API 1.41 only and answers the unversioned /version
call with a redirect, so the docker SDK's version detection fails there: pin the version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STUDIO_DOCKER_API_VERSION = "1.41"
STUDIO_NETWORK = "sagemaker"  # the only network Studio lets containers join


def in_sagemaker_studio() -> bool:
    """True inside a SageMaker Studio JupyterLab space."""
    return Path("/opt/ml/metadata/resource-metadata.json").exists() or bool(
        os.environ.get("SAGEMAKER_SPACE_NAME")
    )


def docker_client() -> Any:
    """A docker SDK client for this machine's engine (API version pinned in Studio)."""
    import docker

    if in_sagemaker_studio():
        return docker.from_env(version=STUDIO_DOCKER_API_VERSION)
    return docker.from_env()
