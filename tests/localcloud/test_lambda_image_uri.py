"""GetFunction's Code.ResolvedImageUri, as AWS forms it, whatever moto answered."""

from __future__ import annotations

import pytest

from localcloud.lambda_.functions import resolved_image

REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scd-dev-16-fn"
DIGEST = "6749521b339ca752880346aac0db0e2d667b3f448cb25b547307c3b7e7e45387"


@pytest.mark.parametrize("image_uri", [f"{REPOSITORY}@sha256:{DIGEST}", f"{REPOSITORY}:v1"])
def test_resolved_image_uri_is_the_repository_at_the_deployed_digest(image_uri: str) -> None:
    moto_answer = {
        "Configuration": {"CodeSha256": DIGEST},
        "Code": {"ImageUri": image_uri, "ResolvedImageUri": f"{REPOSITORY}@sha256@sha256:x"},
    }
    code = resolved_image(moto_answer)["Code"]
    assert code["ResolvedImageUri"] == f"{REPOSITORY}@sha256:{DIGEST}"
    assert code["ImageUri"] == image_uri


def test_zip_functions_are_left_alone() -> None:
    zipped = {"Configuration": {"CodeSha256": "abc="}, "Code": {"Location": "https://x"}}
    assert resolved_image(zipped) == {
        "Configuration": {"CodeSha256": "abc="},
        "Code": {"Location": "https://x"},
    }
