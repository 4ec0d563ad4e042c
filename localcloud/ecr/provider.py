"""The ECR provider: DescribeImages with AWS's image sizes; every other operation is moto's.

moto keeps repositories and the manifests put with PutImage, but reports an image's
imageSizeInBytes as its config blob's size. This provider answers DescribeImages from moto's
ECR backend objects, read in-process through the moto gateway, with imageSizeInBytes = the
sum of the manifest's layer sizes, as AWS computes it
(https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html).

AWS semantics kept:
- repositoryName must exist in the registry (registryId, default the caller's account), else
  RepositoryNotFoundException "The repository with name '...' does not exist in the registry
  with id '...'".
- imageIds select by tag and/or digest; one that matches nothing fails the whole call with
  ImageNotFoundException "The image with imageId {imageDigest:'...', imageTag:'...'} does not
  exist within the repository with name '...' in the registry with id '...'".
- filter.tagStatus (TAGGED, UNTAGGED, ANY) and filter.imageStatus (ACTIVE, ANY); maxResults
  (1-1000, default 100) with nextToken; maxResults and nextToken cannot be combined with
  imageIds. imageTags is left out for an untagged image; imageStatus is ACTIVE.

Where the local cloud differs from AWS:
- imageSizeInBytes is the sum of the layer sizes written in the manifest. Images built by the
  course's process runtime list the uncompressed bytes of each step's files; AWS sums the
  compressed layer blobs that `docker push` uploaded.
- There is no registry behind the repositories: `docker push` and `docker pull` do not work,
  and layer and config blobs are neither stored nor checked. Images arrive only with
  PutImage (which `helpers.images.build_and_push` does for the local backend).
- Scans never run: imageScanStatus, imageScanFindingsSummary and lastRecordedPullTime are
  never returned; images are never archived.
- Images come in the order they were pushed; nextToken is an opaque offset.
- `reset` also deletes the local image store (`<state>/images`): the process-runtime images.
"""

from __future__ import annotations

import base64
import json
import shutil
from typing import Any

from ..protocols import ServiceError
from ..registry import Provider, RequestContext

_TAG_STATUSES = ("TAGGED", "UNTAGGED", "ANY")
_IMAGE_STATUSES = ("ACTIVE", "ARCHIVED", "ACTIVATING", "ANY")


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


class EcrProvider(Provider):
    """DescribeImages from moto's ECR backend, with AWS's image sizes."""

    service = "ecr"

    def reset(self) -> None:
        """Delete the local image store along with moto's repositories."""
        shutil.rmtree(self.cloud.state_dir / "images", ignore_errors=True)

    def status(self) -> dict[str, Any]:
        """How many process-runtime images the local image store holds."""
        store = self.cloud.state_dir / "images"
        count = sum(1 for p in store.iterdir() if len(p.name) == 64) if store.is_dir() else 0
        return {"local images": count}

    def DescribeImages(self, params: dict, context: RequestContext) -> dict:
        """Image details with imageSizeInBytes = sum of the manifest's layer sizes."""
        name = params["repositoryName"]
        registry = params.get("registryId") or context.account_id
        image_ids = params.get("imageIds")
        limit, token = params.get("maxResults"), params.get("nextToken")
        status_filter = params.get("filter") or {}
        tag_status = status_filter.get("tagStatus", "ANY")
        image_status = status_filter.get("imageStatus", "ANY")
        if image_ids and (limit is not None or token):
            raise _invalid(
                "Invalid parameter: maxResults and nextToken cannot be used with imageIds."
            )
        if limit is not None and not 1 <= limit <= 1000:
            raise _invalid(
                "Invalid parameter at 'maxResults' failed to satisfy constraint: "
                "'Member must have value less than or equal to 1000 and greater than or "
                "equal to 1'"
            )
        if tag_status not in _TAG_STATUSES or image_status not in _IMAGE_STATUSES:
            raise _invalid("Invalid parameter at 'filter' failed to satisfy constraint")
        with self.cloud.moto.backend("ecr", context.account_id, context.region) as backend:
            details = _details(backend, name, registry, image_ids)
        if tag_status != "ANY":
            details = [d for d in details if bool(d.get("imageTags")) == (tag_status == "TAGGED")]
        if image_status not in ("ANY", "ACTIVE"):
            details = []
        if image_ids:
            return {"imageDetails": details}
        start = _decode_token(token)
        end = start + (limit or 100)
        out: dict[str, Any] = {"imageDetails": details[start:end]}
        if end < len(details):
            out["nextToken"] = base64.urlsafe_b64encode(json.dumps([end]).encode()).decode()
        return out


def _details(
    backend: Any, name: str, registry: str, image_ids: list | None
) -> list[dict[str, Any]]:
    """The repository's images (or the requested ones) as AWS ImageDetail dicts.

    `backend` is moto's ECR backend, held under the moto lock by the caller.
    """
    repository = backend.repositories.get(name)
    if repository is None or repository.registry_id != registry:
        raise ServiceError(
            "RepositoryNotFoundException",
            f"The repository with name '{name}' does not exist in the registry with id "
            f"'{registry}'",
        )
    images = list(repository.images)
    if image_ids:
        chosen: list[Any] = []
        for image_id in image_ids:
            image = _find_image(images, image_id.get("imageTag"), image_id.get("imageDigest"))
            if image is None:
                shown = (
                    f"{{imageDigest:'{image_id.get('imageDigest') or 'null'}', "
                    f"imageTag:'{image_id.get('imageTag') or 'null'}'}}"
                )
                raise ServiceError(
                    "ImageNotFoundException",
                    f"The image with imageId {shown} does not exist within the repository "
                    f"with name '{name}' in the registry with id '{registry}'",
                )
            if image not in chosen:
                chosen.append(image)
        images = chosen
    return [_detail(image, repository) for image in images]


def _find_image(images: list[Any], tag: str | None, digest: str | None) -> Any:
    """The image with this tag and/or digest (None if none or neither is given)."""
    if not tag and not digest:
        return None
    for image in images:
        if (not tag or tag in image.image_tags) and (
            not digest or digest == image.get_image_digest()
        ):
            return image
    return None


def _detail(image: Any, repository: Any) -> dict[str, Any]:
    """One moto image as an AWS ImageDetail."""
    try:
        manifest = json.loads(image.image_manifest)
    except (TypeError, ValueError):
        manifest = {}
    detail: dict[str, Any] = {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageDigest": image.get_image_digest(),
        "imagePushedAt": image.image_pushed_at,
        "imageManifestMediaType": image.image_manifest_media_type or manifest.get("mediaType"),
        "imageStatus": "ACTIVE",
    }
    if image.image_tags:
        detail["imageTags"] = list(image.image_tags)
    layers = manifest.get("layers")
    if isinstance(layers, list):
        detail["imageSizeInBytes"] = sum(int(layer.get("size", 0)) for layer in layers)
    config_type = (manifest.get("config") or {}).get("mediaType")
    if config_type:
        detail["artifactMediaType"] = config_type
    return {k: v for k, v in detail.items() if v is not None}


def _decode_token(token: str | None) -> int:
    """The offset a nextToken stands for (0 without one)."""
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))[0])
    except (ValueError, TypeError, IndexError) as error:
        raise _invalid("Invalid parameter at 'nextToken' failed to satisfy constraint") from error
