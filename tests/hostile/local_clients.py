"""boto3 clients on a test daemon, as a notebook would make them (dummy credentials)."""

from __future__ import annotations

from typing import Any

import boto3

from localcloud import daemon


def local_client(cloud: daemon.DaemonInfo, service: str) -> Any:
    """A boto3 client of `service` on the test daemon, in us-east-1."""
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
