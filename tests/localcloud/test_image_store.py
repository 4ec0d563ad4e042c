"""The process runtime's images on the live local cloud: the image store, ECR, build cache.

Images are built as a notebook builds them (`helpers.images.build_and_push`); what is checked
here is the local cloud's side: what the store holds, what ECR answers, what a build reuses.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from live_fixtures import ImageFactory, PushedImage

from helpers import images
from localcloud import images as local_images
from localcloud.images.dockerfile import DockerfileError

DOCKERFILE = textwrap.dedent(
    """\
    FROM public.ecr.aws/lambda/python:3.12
    # requirements first, so code changes do not reinstall them
    COPY requirements.txt ${LAMBDA_TASK_ROOT}
    RUN pip install --no-cache-dir -r requirements.txt
    COPY app.py ${LAMBDA_TASK_ROOT}
    ENV GREETING="hello from the image"
    CMD ["app.handler"]
    """
)
APP = textwrap.dedent(
    """\
    import os
    import simplejson

    def handler(event, context):
        return simplejson.dumps({"greeting": os.environ.get("GREETING"), "event": event})
    """
)
# simplejson is in the course environment: the build needs no network.
FUNCTION_FILES = {"Dockerfile": DOCKERFILE, "requirements.txt": "simplejson\n", "app.py": APP}
IMAGE_KEYS = {
    "digest", "repository", "tags", "base", "lambda_base", "python_version", "workdir", "env",
    "entrypoint", "cmd", "rootfs", "python", "size_bytes", "created",
}  # fmt: skip


@pytest.fixture
def built(build_image: ImageFactory) -> PushedImage:
    """The function image, built once for the session."""
    return build_image(FUNCTION_FILES)


def test_build_writes_the_image_store_contract(built):
    image, repository = built.built, built.repository
    stored = local_images.load_local_image(image.digest)
    assert set(stored) >= IMAGE_KEYS
    assert stored["digest"] == image.digest
    assert stored["repository"] == repository["repositoryName"]
    assert stored["tags"] == ["latest"]
    assert stored["base"] == "public.ecr.aws/lambda/python:3.12"
    assert stored["lambda_base"] is True
    assert stored["python_version"] == "3.12"
    assert stored["workdir"] == "/var/task"
    assert stored["env"]["LAMBDA_TASK_ROOT"] == "/var/task"
    assert stored["env"]["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert stored["env"]["GREETING"] == "hello from the image"
    assert stored["entrypoint"] == ["/lambda-entrypoint.sh"]
    assert stored["cmd"] == ["app.handler"]
    image_dir = local_images.local_image_dir(image.digest)
    assert Path(stored["rootfs"]) == image_dir / "rootfs"
    assert (image_dir / "rootfs" / "var" / "task" / "app.py").read_text() == APP
    assert (image_dir / "rootfs" / "var" / "task" / "requirements.txt").exists()
    assert stored["size_bytes"] == image.size_bytes > 0
    assert local_images.load_local_image("sha256:" + "0" * 64) is None


def test_the_image_python_imports_the_code_and_the_course_packages(built):
    stored = local_images.load_local_image(built.built.digest)
    task_root = Path(stored["rootfs"]) / "var" / "task"
    result = subprocess.run(
        [stored["python"], "-c", "import app; print(app.handler({'n': 1}, None))"],
        cwd=task_root, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout) == {"greeting": None, "event": {"n": 1}}


def test_describe_images_shows_tag_digest_and_layer_size(lab, built):
    client = lab.client("ecr")
    name, digest = built.repository["repositoryName"], built.built.digest
    detail = client.describe_images(repositoryName=name)["imageDetails"]
    assert [d["imageDigest"] for d in detail] == [digest]
    assert detail[0]["imageTags"] == ["latest"]
    manifest = json.loads((local_images.local_image_dir(digest) / "manifest.json").read_text())
    assert len(manifest["layers"]) == 3  # COPY, pip, COPY
    assert detail[0]["imageSizeInBytes"] == sum(layer["size"] for layer in manifest["layers"])


def test_describe_images_errors_are_aws_shaped(lab, built):
    client = lab.client("ecr")
    name = built.repository["repositoryName"]
    by_digest = client.describe_images(
        repositoryName=name, imageIds=[{"imageDigest": built.built.digest}]
    )
    assert by_digest["imageDetails"][0]["imageTags"] == ["latest"]
    with pytest.raises(client.exceptions.ImageNotFoundException, match="imageTag:'nope'"):
        client.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    with pytest.raises(client.exceptions.RepositoryNotFoundException, match="does not exist"):
        client.describe_images(repositoryName="scd-pytest-16-missing")


def test_unchanged_rebuild_is_a_cache_hit_and_a_change_is_a_new_digest(lab, build_image, tmp_path):
    # An image of its own (other code), so the shared image's repository keeps one image.
    first = build_image({**FUNCTION_FILES, "app.py": APP + "\nVERSION = 1\n"})
    again = images.build_and_push(lab, first.repository, first.context)
    assert again.cached and again.digest == first.built.digest
    assert any("reusing image" in line for line in again.log)

    changed = tmp_path / "changed"
    changed.mkdir()
    for name, text in {**FUNCTION_FILES, "app.py": APP + "\nVERSION = 2\n"}.items():
        (changed / name).write_text(text)
    second = images.build_and_push(lab, first.repository, changed)
    assert not second.cached and second.digest != first.built.digest
    rootfs = Path(local_images.load_local_image(second.digest)["rootfs"])
    assert "VERSION = 2" in (rootfs / "var" / "task" / "app.py").read_text()
    assert local_images.load_local_image(first.built.digest) is not None  # still runnable


def test_a_system_package_step_is_refused_with_its_line(build_image):
    dockerfile = "FROM public.ecr.aws/lambda/python:3.12\nRUN apt-get install -y curl\n"
    with pytest.raises(DockerfileError, match=r"line 2: RUN apt-get install -y curl") as error:
        build_image({**FUNCTION_FILES, "Dockerfile": dockerfile})
    assert "operating-system packages" in str(error.value)
