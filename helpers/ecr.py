"""ECR repositories for the course: get-or-create with tags, a table of images, and teardown.

Images get into a repository with `helpers.images.build_and_push` (Docker on AWS, the process
runtime locally); this module owns the repository itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import cleanup, naming
from .costs import Price
from .lab import Lab

if TYPE_CHECKING:
    import pandas as pd

KIND = "ecr repository"
_MB = 1024 * 1024


def ensure_repository(lab: Lab, pattern: str, name: str) -> dict[str, Any]:
    """Return the repository `<prefix>-<run_id>-<pattern>-<name>`, creating it if missing.

    Every course repository is named like every other course resource (`scd-...`), which
    the course's IAM policy for students (docs/student-policy.json) allows. The repository
    is private, tagged with the course tags, tags are mutable (a re-push moves `latest`) and
    scan-on-push is off (scans cost time and are not part of the course).
    """
    repository_name = lab.name(pattern, name, max_length=256)
    client = lab.client("ecr")
    try:
        found = client.describe_repositories(repositoryNames=[repository_name])
        return found["repositories"][0]
    except client.exceptions.RepositoryNotFoundException:
        pass
    try:
        created = client.create_repository(
            repositoryName=repository_name,
            imageTagMutability="MUTABLE",
            imageScanningConfiguration={"scanOnPush": False},
            tags=naming.tag_list(lab.tags(pattern)),
        )["repository"]
    except client.exceptions.RepositoryAlreadyExistsException:  # created meanwhile
        return client.describe_repositories(repositoryNames=[repository_name])["repositories"][0]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "AccessDeniedException":
            raise
        raise PermissionError(
            f"this role may not create the ECR repository {repository_name} "
            f"({error.response['Error'].get('Message', '')}). Ask your administrator to attach "
            "the course's policy (docs/student-policy.json) to your role or user."
        ) from error
    lab.ledger.record(KIND, repository_name, pattern)
    return created


def images(lab: Lab, repository_name: str) -> pd.DataFrame:
    """The repository's images, newest first: tag, digest, size in MB, pushed at."""
    import pandas as pd

    rows = []
    paginator = lab.client("ecr").get_paginator("describe_images")
    for page in paginator.paginate(repositoryName=repository_name):
        for detail in page["imageDetails"]:
            for tag in detail.get("imageTags") or [None]:
                rows.append(
                    {
                        "tag": tag,
                        "digest": detail["imageDigest"],
                        "size_mb": round(detail.get("imageSizeInBytes", 0) / _MB, 3),
                        "pushed_at": detail.get("imagePushedAt"),
                    }
                )
    table = pd.DataFrame(rows, columns=["tag", "digest", "size_mb", "pushed_at"])
    return table.sort_values("pushed_at", ascending=False, kind="stable").reset_index(drop=True)


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course repository (all runs); names say run and pattern."""
    return cleanup.named(KIND, lab, "ecr.describe_repositories", "repositories", "repositoryName")


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a repository together with its images."""
    lab.client("ecr").delete_repository(repositoryName=resource.identifier, force=True)


# Functions and task definitions name its images.
RESOURCE_KINDS = [
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function", "ecs task definition"))
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "ecr_gb_month": Price(0.10, "GB-month"),
}
