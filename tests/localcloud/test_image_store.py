"""Local images end to end: ECR repositories, process-runtime builds, the image store, teardown."""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

import helpers
from helpers import cleanup, ecr, images
from localcloud import images as local_images
from localcloud.images.dockerfile import DockerfileError

PATTERN = "16"
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
IMAGE_KEYS = {
    "digest", "repository", "tags", "base", "lambda_base", "python_version", "workdir", "env",
    "entrypoint", "cmd", "rootfs", "python", "size_bytes", "created",
}  # fmt: skip


def _context(folder: Path, app: str = APP, dockerfile: str = DOCKERFILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "requirements.txt").write_text("simplejson\n")  # in the course env: no network
    (folder / "app.py").write_text(app)
    return folder


def _unique(prefix: str) -> str:
    return f"sagemaker-{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def built(cloud, tmp_path_factory):
    """One repository and one build, shared by the tests that only read them."""
    lab = helpers.connect("local", run_id="pytest", quiet=True)
    repository = ecr.ensure_repository(lab, PATTERN, _unique("img"))
    context = _context(tmp_path_factory.mktemp("context") / "fn")
    image = images.build_and_push(lab, repository, context)
    yield lab, repository, context, image
    client = lab.client("ecr")
    with contextlib.suppress(client.exceptions.RepositoryNotFoundException):
        client.delete_repository(repositoryName=repository["repositoryName"], force=True)


def test_build_writes_the_image_store_contract(built):
    _, repository, _, image = built
    assert image.image_uri == f"{repository['repositoryUri']}@{image.digest}"
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
    _, _, _, image = built
    stored = local_images.load_local_image(image.digest)
    task_root = Path(stored["rootfs"]) / "var" / "task"
    result = subprocess.run(
        [stored["python"], "-c", "import app; print(app.handler({'n': 1}, None))"],
        cwd=task_root, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout) == {"greeting": None, "event": {"n": 1}}


def test_describe_images_shows_tag_digest_and_layer_size(built):
    lab, repository, _, image = built
    client = lab.client("ecr")
    detail = client.describe_images(repositoryName=repository["repositoryName"])["imageDetails"]
    assert [d["imageDigest"] for d in detail] == [image.digest]
    assert detail[0]["imageTags"] == ["latest"]
    manifest = json.loads(
        (local_images.local_image_dir(image.digest) / "manifest.json").read_text()
    )
    assert len(manifest["layers"]) == 3  # COPY, pip, COPY
    assert detail[0]["imageSizeInBytes"] == sum(layer["size"] for layer in manifest["layers"])
    table = ecr.images(lab, repository["repositoryName"])
    assert list(table.columns) == ["tag", "digest", "size_mb", "pushed_at"]
    assert table.loc[0, "tag"] == "latest" and table.loc[0, "digest"] == image.digest


def test_describe_images_errors_are_aws_shaped(built):
    lab, repository, _, image = built
    client = lab.client("ecr")
    name = repository["repositoryName"]
    by_digest = client.describe_images(
        repositoryName=name, imageIds=[{"imageDigest": image.digest}]
    )
    assert by_digest["imageDetails"][0]["imageTags"] == ["latest"]
    with pytest.raises(client.exceptions.ImageNotFoundException, match="imageTag:'nope'"):
        client.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    with pytest.raises(client.exceptions.RepositoryNotFoundException, match="does not exist"):
        client.describe_images(repositoryName="scd-pytest-16-missing")


def test_unchanged_rebuild_is_a_cache_hit_and_a_change_is_a_new_digest(built, tmp_path):
    lab, repository, context, image = built
    again = images.build_and_push(lab, repository, context)
    assert again.cached and again.digest == image.digest
    assert any("reusing image" in line for line in again.log)

    changed = _context(tmp_path / "changed", app=APP + "\nVERSION = 2\n")
    second = images.build_and_push(lab, repository, changed)
    assert not second.cached and second.digest != image.digest
    rootfs = Path(local_images.load_local_image(second.digest)["rootfs"])
    assert "VERSION = 2" in (rootfs / "var" / "task" / "app.py").read_text()
    assert local_images.load_local_image(image.digest) is not None  # the old image stays runnable


def test_a_system_package_step_is_refused_with_its_line(lab, tmp_path):
    repository = ecr.ensure_repository(lab, PATTERN, _unique("refused"))
    dockerfile = "FROM public.ecr.aws/lambda/python:3.12\nRUN apt-get install -y curl\n"
    context = _context(tmp_path, dockerfile=dockerfile)
    with pytest.raises(DockerfileError, match=r"line 2: RUN apt-get install -y curl") as error:
        images.build_and_push(lab, repository, context)
    assert "operating-system packages" in str(error.value)
    lab.client("ecr").delete_repository(repositoryName=repository["repositoryName"])


def test_ensure_repository_is_idempotent_and_teardown_deletes_it(cloud):
    lab = helpers.connect("local", run_id="pytestecr", quiet=True)
    name = _unique("repo")
    first = ecr.ensure_repository(lab, PATTERN, name)
    second = ecr.ensure_repository(lab, PATTERN, name)
    assert first["repositoryArn"] == second["repositoryArn"]
    assert first["repositoryName"] == f"scd-pytestecr-{PATTERN}-{name}"
    tags = lab.client("ecr").list_tags_for_resource(resourceArn=first["repositoryArn"])["tags"]
    assert {t["Key"]: t["Value"] for t in tags} == lab.tags(PATTERN)

    rows = cleanup.teardown(lab, pattern=PATTERN, quiet=True)
    assert {"kind": ecr.KIND, "id": first["repositoryName"]}.items() <= next(
        r for r in rows if r["id"] == first["repositoryName"]
    ).items()
    names = [r["repositoryName"] for r in lab.client("ecr").describe_repositories()["repositories"]]
    assert first["repositoryName"] not in names
