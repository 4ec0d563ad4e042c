"""The local ECR: moto's repositories, with DescribeImages served by the course's provider."""

from ..services import Service
from .provider import EcrProvider

SERVICE = Service(
    "ecr",
    EcrProvider,
    operations={
        "CreateRepository": "stored and tagged; no registry behind it (docker push/pull fail)",
        "DescribeRepositories": "",
        "GetAuthorizationToken": "aws backend only (docker login before a push)",
        "PutImage": "the course passes imageDigest (sha256 of the manifest, AWS's rule); "
        "moving the only tag of an image to a new one deletes the old image (AWS keeps it "
        "untagged)",
        "DescribeImages": "",
        "DeleteRepository": "force=True deletes the images with it",
    },
)

__all__ = ["SERVICE", "EcrProvider"]
