"""The AWS build path (`_build_with_docker`) with a fake Docker engine, and the no-Docker error."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from helpers import images
from localcloud import images as local_images

URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scd-dev-16-fn"
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = {"repositoryName": "scd-dev-16-fn", "repositoryUri": URI}


class FakeApi:
    """The docker SDK's low-level client: records build and push calls, streams chunks."""

    def __init__(self, build_chunks: list[dict], push_chunks: list[dict]) -> None:
        self.build_chunks, self.push_chunks = build_chunks, push_chunks
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def build(self, **kwargs: Any):
        self.calls.append(("build", kwargs))
        yield from self.build_chunks

    def push(self, repository: str, **kwargs: Any):
        self.calls.append(("push", {"repository": repository, **kwargs}))
        yield from self.push_chunks


class FakeDocker:
    def __init__(self, api: FakeApi, driver_status: list | None = None) -> None:
        self.api = api
        self.logins: list[dict[str, Any]] = []
        self.driver_status = driver_status or [["Backing Filesystem", "extfs"]]

    def ping(self) -> bool:
        return True

    def info(self) -> dict:
        return {"DriverStatus": self.driver_status}

    def login(self, **kwargs: Any) -> dict:
        self.logins.append(kwargs)
        return {"Status": "Login Succeeded"}


class FakeEcr:
    def __init__(self, media_type: str) -> None:
        self.media_type = media_type

    def get_authorization_token(self) -> dict:
        token = base64.b64encode(b"AWS:secret-password").decode()
        endpoint = "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        return {"authorizationData": [{"authorizationToken": token, "proxyEndpoint": endpoint}]}

    def describe_images(self, repositoryName: str, imageIds: list) -> dict:
        assert imageIds == [{"imageTag": "v1"}]
        detail = {"imageDigest": DIGEST, "imageSizeInBytes": 73_400_320}
        return {"imageDetails": [{**detail, "imageManifestMediaType": self.media_type}]}


class FakeLab:
    is_local = False

    def __init__(self, media_type: str) -> None:
        self.ecr = FakeEcr(media_type)

    def client(self, service: str) -> FakeEcr:
        assert service == "ecr"
        return self.ecr


BUILD_OK = [
    {"stream": "Step 1/3 : FROM public.ecr.aws/lambda/python:3.12\n"},
    {"stream": " ---> 1a2b3c\n"},
    {"aux": {"ID": "sha256:1a2b3c"}},
    {"stream": "Successfully built 1a2b3c\n"},
]
PUSH_OK = [
    {"status": "The push refers to repository [" + URI + "]"},
    {"status": "Pushing", "id": "9f", "progressDetail": {"current": 1, "total": 2}},
    {"status": "Pushed", "id": "9f", "progressDetail": {}},
    {"status": "v1: digest: " + DIGEST + " size: 1234"},
]
V2 = "application/vnd.docker.distribution.manifest.v2+json"


def fake_engine(
    monkeypatch, build=BUILD_OK, push=PUSH_OK, studio=False, driver_status=None
) -> FakeDocker:
    docker = FakeDocker(FakeApi(build, push), driver_status)
    monkeypatch.setattr(images, "docker_client", lambda: docker)
    monkeypatch.setattr(images, "in_sagemaker_studio", lambda: studio)
    return docker


def test_builds_for_linux_amd64_logs_in_pushes_and_returns_the_digest_uri(monkeypatch, tmp_path):
    docker = fake_engine(monkeypatch)
    built = images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")
    (_, build), (_, push) = docker.api.calls
    assert build["platform"] == "linux/amd64"
    assert build["path"] == str(tmp_path) and build["tag"] == f"{URI}:v1"
    assert build["rm"] and build["decode"] and "network_mode" not in build
    assert docker.logins == [
        {
            "username": "AWS",
            "password": "secret-password",
            "registry": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        }
    ]
    assert push["repository"] == URI and push["tag"] == "v1" and push["stream"]
    assert push["auth_config"] == {"username": "AWS", "password": "secret-password"}
    assert built.image_uri == f"{URI}@{DIGEST}" and built.tagged_uri == f"{URI}:v1"
    assert built.size_bytes == 73_400_320 and built.digest == DIGEST
    assert "Successfully built 1a2b3c" in built.log
    assert "9f Pushed" in built.log and not any("Pushing" in line for line in built.log)


def test_in_sagemaker_studio_the_build_joins_the_sagemaker_network(monkeypatch, tmp_path):
    docker = fake_engine(monkeypatch, studio=True)
    images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")
    assert docker.api.calls[0][1]["network_mode"] == "sagemaker"


def test_a_build_error_chunk_raises_with_its_line(monkeypatch, tmp_path):
    failing = [
        *BUILD_OK[:2],
        {"errorDetail": {"message": "pip: not found"}, "error": "pip: not found"},
    ]
    fake_engine(monkeypatch, build=failing)
    with pytest.raises(images.ImageBuildError, match="docker build failed: pip: not found"):
        images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")


def test_a_push_error_chunk_raises_with_its_line(monkeypatch, tmp_path):
    denied = [PUSH_OK[0], {"error": "denied: not authorized to perform ecr:InitiateLayerUpload"}]
    fake_engine(monkeypatch, push=denied)
    with pytest.raises(images.ImageBuildError, match="push .* failed: denied: not authorized"):
        images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")


def test_an_image_index_is_refused_because_lambda_needs_one_manifest(monkeypatch, tmp_path):
    fake_engine(monkeypatch)
    index = FakeLab("application/vnd.oci.image.index.v1+json")
    with pytest.raises(images.ImageBuildError, match="--provenance=false"):
        images._build_with_docker(index, REPOSITORY, tmp_path, "v1")


FAKE_CLI = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
if [ "$1" = login ]; then cat >> "$(dirname "$0")/stdin"; exit 0; fi
echo "#1 building with BuildKit"
echo "#9 pushing manifest done"
"""


def test_a_containerd_image_store_builds_with_the_cli_without_attestations(monkeypatch, tmp_path):
    containerd = [["driver-type", "io.containerd.snapshotter.v1"]]
    docker = fake_engine(monkeypatch, driver_status=containerd)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_CLI)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    built = images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")
    login, build = (bin_dir / "calls").read_text().splitlines()
    assert (
        login
        == "login --username AWS --password-stdin https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )
    assert (bin_dir / "stdin").read_text() == "secret-password"  # never on the command line
    assert build == (
        f"build --platform linux/amd64 --provenance=false --sbom=false --tag {URI}:v1 "
        f"--push {tmp_path}"
    )
    assert docker.api.calls == []  # the engine API's build is not used there
    assert built.image_uri == f"{URI}@{DIGEST}" and "#9 pushing manifest done" in built.log
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(images.ImageBuildError, match="docker CLI can, but it is not on PATH"):
        images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")


def test_an_image_pushed_by_hand_is_taken_once_checked(monkeypatch):
    assert images.pushed_image(FakeLab(V2), REPOSITORY, "v1").image_uri == f"{URI}@{DIGEST}"
    index = FakeLab("application/vnd.oci.image.index.v1+json")
    with pytest.raises(images.ImageBuildError, match="one image manifest"):
        images.pushed_image(index, REPOSITORY, "v1")


def test_without_a_docker_engine_the_error_names_the_ways_out(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setattr(images, "in_sagemaker_studio", lambda: False)
    with pytest.raises(images.DockerUnavailable) as error:
        images._build_with_docker(FakeLab(V2), REPOSITORY, tmp_path, "v1")
    text = str(error.value)
    for way in ("No Docker engine", "EnableDockerAccess", "CloudShell", "CodeBuild", "local"):
        assert way in text


def test_build_and_push_needs_a_dockerfile(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Dockerfile"):
        images.build_and_push(FakeLab(V2), REPOSITORY, tmp_path)


def test_local_image_paths_are_digest_named_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path))
    assert local_images.local_image_dir(DIGEST) == tmp_path / "images" / ("ab" * 32)
    assert local_images.load_local_image(DIGEST) is None
    with pytest.raises(ValueError, match="not an image digest"):
        local_images.local_image_dir("sha256:../../etc")
