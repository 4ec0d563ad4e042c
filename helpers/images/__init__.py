"""Container images: build one from a context directory and push it to an ECR repository.

`build_and_push(lab, repository, context_dir)` is the one call a notebook makes. How it
builds is the backend difference, in two functions:

- `_build_with_docker` (AWS): the Docker engine builds the image for linux/amd64 and pushes
  it to ECR, as a student would with `docker build` and `docker push`.
- `_build_for_process_runtime` (local): no Docker. The local cloud's process runtime builds
  the image (`localcloud.images`: the build context's files, a virtual environment holding
  what its `RUN pip install` lines need, the parsed Dockerfile's configuration) and its
  local ECR gets a real manifest for it.

SageMaker Studio exposes Docker Engine API 1.41 only and answers the unversioned /version
call with a redirect, so the docker SDK's version detection fails there: pin the version.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcloud.client import ImageBuildError, build_local_image, show_build_line

if TYPE_CHECKING:
    from ..lab import Lab

STUDIO_DOCKER_API_VERSION = "1.41"
STUDIO_NETWORK = "sagemaker"  # the only network Studio lets containers join
PLATFORM = "linux/amd64"  # the course's functions and tasks run on x86_64
_SINGLE_IMAGE_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


class DockerUnavailable(ImageBuildError):
    """No Docker engine answers here, so images cannot be built for AWS on this machine."""


@dataclass(frozen=True)
class BuiltImage:
    """A built and pushed image; create functions and tasks from `image_uri` (digest form)."""

    image_uri: str  # <repositoryUri>@sha256:...: pins exactly this build
    digest: str
    size_bytes: int
    tag: str
    log: list[str] = field(default_factory=list, repr=False)
    cached: bool = False  # local backend: an unchanged build context reused its image

    @property
    def tagged_uri(self) -> str:
        """The same image by tag (<repositoryUri>:<tag>), which a later push moves."""
        return f"{self.image_uri.split('@', 1)[0]}:{self.tag}"


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


def build_and_push(
    lab: Lab, repository: dict[str, Any], context_dir: Path | str, tag: str = "latest"
) -> BuiltImage:
    """Build the image in `context_dir` (its Dockerfile) and push it to the repository as `tag`."""
    context = Path(context_dir).resolve()
    if not (context / "Dockerfile").is_file():
        raise FileNotFoundError(f"no Dockerfile in {context}: write it (%%writefile) first")
    if lab.is_local:
        return _build_for_process_runtime(lab, repository, context, tag)
    return _build_with_docker(lab, repository, context, tag)


def _build_for_process_runtime(
    lab: Lab, repository: dict[str, Any], context: Path, tag: str
) -> BuiltImage:
    """Local backend: no Docker; the local cloud's process runtime builds it."""
    built = build_local_image(lab.client("ecr"), repository, context, tag)
    uri = f"{repository['repositoryUri']}@{built.digest}"
    return BuiltImage(uri, built.digest, built.size_bytes, tag, built.log, built.cached)


def _build_with_docker(lab: Lab, repository: dict[str, Any], context: Path, tag: str) -> BuiltImage:
    """AWS backend: `docker build --platform linux/amd64`, log in to ECR, `docker push`.

    The build goes through the Engine API's `/build` endpoint (the docker SDK's low-level
    `api.build`, so that its output streams as it comes). That endpoint uses the classic
    builder unless BuildKit is requested (`version=2`, which the SDK never sends): one image
    for one platform, no provenance or SBOM attestations, so ECR receives a single image
    manifest, which is what Lambda requires (a multi-platform or attestation index is
    refused with "image manifest, config or layer media type ... is not supported"). An
    engine that stores images in containerd builds with BuildKit whatever the API asks, and
    pushes an index with an attestation: there the docker CLI builds with
    `--provenance=false --sbom=false` instead. After the push the manifest's media type is
    checked anyway. In SageMaker Studio the engine is reached with API 1.41 and builds join
    the `sagemaker` network, the only one allowed.
    """
    client = _docker_or_explain()
    uri = repository["repositoryUri"]
    log: list[str] = []
    ecr = lab.client("ecr")
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    if _stores_images_in_containerd(client):
        _build_and_push_with_cli(f"{uri}:{tag}", context, data["proxyEndpoint"], password, log)
        return pushed_image(lab, repository, tag, log)
    options: dict[str, Any] = {"network_mode": STUDIO_NETWORK} if in_sagemaker_studio() else {}
    chunks = client.api.build(
        path=str(context),
        tag=f"{uri}:{tag}",
        platform=PLATFORM,
        rm=True,
        forcerm=True,
        decode=True,
        **options,
    )
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            raise ImageBuildError(f"docker build failed: {_error_text(chunk)}")
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                show_build_line(log, line)
    client.login(username=username, password=password, registry=data["proxyEndpoint"])
    auth = {"username": username, "password": password}
    for chunk in client.api.push(uri, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk or "errorDetail" in chunk:
            raise ImageBuildError(f"docker push to {uri} failed: {_error_text(chunk)}")
        if chunk.get("status") and not chunk.get("progressDetail"):
            show_build_line(log, " ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)))
    return pushed_image(lab, repository, tag, log)


def pushed_image(
    lab: Lab, repository: dict[str, Any], tag: str, log: list[str] | None = None
) -> BuiltImage:
    """An image already pushed as `tag` (by this helper, or by hand, e.g. in CloudShell).

    Lambda runs only single images: an index (multi-platform or with attestations) is refused.
    """
    detail = lab.client("ecr").describe_images(
        repositoryName=repository["repositoryName"], imageIds=[{"imageTag": tag}]
    )["imageDetails"][0]
    media_type = detail.get("imageManifestMediaType", "")
    if media_type and media_type not in _SINGLE_IMAGE_TYPES:
        raise ImageBuildError(
            f"ECR received a {media_type} (a multi-platform or attestation index); Lambda "
            f"needs one image manifest. Build and push it again with: {_cli_command('URI:TAG')}"
        )
    digest = detail["imageDigest"]
    size = int(detail.get("imageSizeInBytes", 0))
    return BuiltImage(f"{repository['repositoryUri']}@{digest}", digest, size, tag, log or [])


def _stores_images_in_containerd(client: Any) -> bool:
    """Whether the engine uses the containerd image store (`docker info`: driver-type)."""
    status = client.info().get("DriverStatus") or []
    return any("containerd" in str(value) for _, value in status)


def _cli_command(image: str, context: str = ".", network: str | None = None) -> str:
    """The docker CLI build that gives Lambda one linux/amd64 manifest, with any builder."""
    joins = f" --network {network}" if network else ""
    return (
        f"docker build --platform {PLATFORM} --provenance=false --sbom=false{joins} "
        f"--tag {image} --push {context}"
    )


def _build_and_push_with_cli(
    image: str, context: Path, registry: str, password: str, log: list[str]
) -> None:
    """Log the docker CLI in to ECR, then build and push with BuildKit's attestations off."""
    docker = shutil.which("docker")
    if docker is None:
        raise ImageBuildError(
            "This Docker engine stores images in containerd, and its API cannot build an "
            "image Lambda accepts; the docker CLI can, but it is not on PATH. Install it, or "
            "turn the containerd image store off (Docker Desktop: Settings > General), or "
            f"build by hand: {_cli_command(image, str(context))}"
        )
    login = [docker, "login", "--username", "AWS", "--password-stdin", registry]
    subprocess.run(login, input=password, text=True, check=True, capture_output=True)
    network = STUDIO_NETWORK if in_sagemaker_studio() else None
    command = [docker, *_cli_command(image, str(context), network).split()[1:]]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as build:
        assert build.stdout is not None
        for line in build.stdout:
            if line.strip():
                show_build_line(log, line.rstrip())
    if build.returncode != 0:
        raise ImageBuildError(f"docker build failed (exit {build.returncode}): {log[-1:]}")


def _docker_or_explain() -> Any:
    """The Docker client, or DockerUnavailable naming the ways out."""
    try:
        client = docker_client()
        client.ping()
    except Exception as error:  # docker not installed, no socket, engine not running
        raise DockerUnavailable(
            f"No Docker engine answers on this machine ({type(error).__name__}: {error}), so "
            "the image cannot be built for AWS here. Ways out:\n"
            "  1. enable Docker: start Docker Desktop or the docker service; in SageMaker "
            "Studio, set DockerSettings.EnableDockerAccess=ENABLED on the domain and restart "
            "the JupyterLab app;\n"
            "  2. build and push in AWS CloudShell, which has Docker (but no Jupyter): copy the "
            f"build context there, run `{_cli_command('<repositoryUri>:<tag>')}` after "
            "`docker login`, and continue here with "
            "`image = helpers.images.pushed_image(lab, repository, '<tag>')`;\n"
            "  3. build with AWS CodeBuild (a later option of the course).\n"
            'The local backend (BACKEND = "local") needs no Docker.'
        ) from error
    return client


def _error_text(chunk: dict[str, Any]) -> str:
    """The message of a Docker error chunk."""
    detail = chunk.get("errorDetail") or {}
    return str(chunk.get("error") or detail.get("message") or chunk).strip()
