"""ECR and image helpers on the live local cloud: repositories, build_and_push, the image table."""

from __future__ import annotations

import uuid

from live_fixtures import ImageFactory

import helpers
from helpers import cleanup, ecr, images

PATTERN = "16"
SMALL_IMAGE = {
    "Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY app.py .\nCMD ["python", "app.py"]\n',
    "app.py": "print('hello')\n",
}


def test_build_and_push_names_the_image_by_digest_and_ecr_lists_it(
    lab: helpers.Lab, build_image: ImageFactory
):
    pushed = build_image(SMALL_IMAGE)
    image, repository = pushed.built, pushed.repository
    assert image.image_uri == f"{repository['repositoryUri']}@{image.digest}"
    assert image.tagged_uri == f"{repository['repositoryUri']}:latest"
    again = images.build_and_push(lab, repository, pushed.context)
    assert again.image_uri == image.image_uri and again.cached
    table = ecr.images(lab, repository["repositoryName"])
    assert list(table.columns) == ["tag", "digest", "size_mb", "pushed_at"]
    assert table.loc[0, "tag"] == "latest" and table.loc[0, "digest"] == image.digest


def test_ensure_repository_is_idempotent_and_teardown_deletes_it(cloud):
    lab = helpers.connect("local", run_id="pytestecr", quiet=True)
    name = f"sagemaker-repo-{uuid.uuid4().hex[:6]}"
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


def test_a_function_from_the_image_reports_the_digest_it_resolved_to(
    lab: helpers.Lab, build_image: ImageFactory, lambda_role: str
):
    image = build_image(SMALL_IMAGE).built
    client = lab.client("lambda")
    for number, image_uri in enumerate([image.image_uri, image.tagged_uri]):
        name = f"pytest-resolved-{uuid.uuid4().hex[:6]}-{number}"
        client.create_function(
            FunctionName=name, Role=lambda_role, PackageType="Image", Code={"ImageUri": image_uri}
        )
        try:
            code = client.get_function(FunctionName=name)["Code"]
            assert code["ImageUri"] == image_uri
            assert code["ResolvedImageUri"] == image.image_uri  # <repository>@sha256:<digest>
        finally:
            client.delete_function(FunctionName=name)
