"""S3 buckets for the course: private, encrypted, globally unique names, JSON reads, teardown.

Bucket names are global across all AWS accounts, so a course name alone could already be
taken. `ensure_bucket` appends a short suffix derived from a hash of the account id (stable
per account, and it does not reveal the id), e.g. `scd-dev-17-results-3fa9c1`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from . import cleanup, naming
from .costs import Price
from .lab import Lab
from .waiting import wait_for

KIND = "s3 bucket"
MAX_NAME = 63


def account_suffix(account_id: str) -> str:
    """Six hex digits derived from the account id: stable, unique enough, not the id itself."""
    return hashlib.sha256(f"{naming.COURSE}:{account_id}".encode()).hexdigest()[:6]


def bucket_name(lab: Lab, pattern: str, name: str) -> str:
    """The bucket's global name: `<course name>-<6 hex>` (still readable by parse_name)."""
    return lab.name(pattern, f"{name}-{account_suffix(lab.account_id)}", MAX_NAME)


def ensure_bucket(lab: Lab, pattern: str, name: str) -> str:
    """Get or create a private, SSE-S3 encrypted, tagged bucket; return its name."""
    bucket = bucket_name(lab, pattern, name)
    client = lab.client("s3")
    try:
        client.head_bucket(Bucket=bucket)
        return bucket
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise  # 403: the name exists in another account (should not happen with the suffix)
    extra: dict[str, Any] = {}
    if lab.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        extra["CreateBucketConfiguration"] = {"LocationConstraint": lab.region}
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):  # made meanwhile
        client.create_bucket(Bucket=bucket, **extra)
    lab.ledger.record(KIND, bucket, pattern)
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": naming.tag_list(lab.tags(pattern))})
    return bucket


def put_json(lab: Lab, bucket: str, key: str, value: Any) -> None:
    """Write a JSON document."""
    lab.client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(value).encode(), ContentType="application/json"
    )


def read_json(lab: Lab, bucket: str, key: str) -> Any:
    """Read and parse a JSON object."""
    body = lab.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return json.loads(body.read())


def wait_for_object(lab: Lab, bucket: str, key: str, timeout: float = 120) -> dict[str, Any]:
    """Wait until the object exists; return its head_object metadata."""
    client = lab.client("s3")

    def check() -> dict[str, Any] | None:
        try:
            return client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise

    return wait_for(
        check,
        what=f"s3://{bucket}/{key}",
        timeout=timeout,
        pace=lab.pace.object_written,
    )


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course bucket (all runs); names say run and pattern."""
    for bucket in lab.client("s3").list_buckets().get("Buckets", []):
        parts = naming.parse_name(bucket["Name"])
        if parts is not None:
            yield cleanup.Resource(KIND, bucket["Name"], parts.pattern, parts.run_id)


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Empty the bucket (every object version and delete marker), then delete it."""
    client = lab.client("s3")
    bucket = resource.identifier
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for listing in ("Versions", "DeleteMarkers")
            for item in page.get(listing, [])
        ]
        if batch:  # a page holds at most 1000 entries, the most delete_objects accepts
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


# Functions and tasks read and write the course's buckets.
RESOURCE_KINDS = [
    cleanup.ResourceKind(KIND, _find, _delete, after=("lambda function", "ecs service", "ecs task"))
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "s3_gb_month": Price(0.023, "GB-month", "S3 Standard; requests extra, tiny here"),
}
