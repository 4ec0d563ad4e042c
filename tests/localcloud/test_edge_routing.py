"""The edge: provider-claimed operations go to the provider, everything else to moto."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from werkzeug.serving import make_server

from localcloud import protocols
from localcloud.edge import Edge
from localcloud.registry import Provider, Registry, RequestContext


class FakeMoto:
    """Stands in for moto: remembers what reached it and answers an empty JSON object."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def serve(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", environ["PATH_INFO"])
        self.targets.append(target)
        if target.endswith(".DescribeLimits"):  # as moto's handler for an unfinished action
            raise NotImplementedError("The describe_limits action has not been implemented")
        if target.endswith(".DescribeEndpoints"):  # as moto's app for an action it lacks
            start_response("404 NOT FOUND", [("Content-Type", "text/html; charset=utf-8")])
            return [b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>"]
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


class GetItemOnly(Provider):
    """Claims DynamoDB GetItem and nothing else."""

    service = "dynamodb"

    def GetItem(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        key = params["Key"]["id"]["S"]
        if key == "missing-table":
            raise protocols.ServiceError(
                "ResourceNotFoundException", "Requested resource not found"
            )
        if key == "bug":
            raise ZeroDivisionError("provider bug")
        return {"Item": {"id": {"S": key}, "served_by": {"S": "provider"}}}


@pytest.fixture
def edge_client() -> Iterator[tuple[Any, FakeMoto, list[str]]]:
    moto = FakeMoto()
    control_calls: list[str] = []

    def control(name: str, body: bytes) -> tuple[int, Any]:
        control_calls.append(name)
        return 200, {"status": "ok"}

    edge = Edge(Registry([GetItemOnly(None)]), moto, control)
    server = make_server("127.0.0.1", 0, edge, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{server.server_port}",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )
    client.meta.events  # noqa: B018 - touch the client so it is fully built before the test
    yield client, moto, control_calls
    server.shutdown()


def test_claimed_operation_is_served_by_the_provider(edge_client):
    client, moto, _ = edge_client
    item = client.get_item(TableName="t", Key={"id": {"S": "42"}})["Item"]
    assert item == {"id": {"S": "42"}, "served_by": {"S": "provider"}}
    assert moto.targets == []


def test_other_operations_fall_through_to_moto(edge_client):
    client, moto, _ = edge_client
    client.put_item(TableName="t", Item={"id": {"S": "42"}})
    client.list_tables()
    assert moto.targets == ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.ListTables"]


def test_services_without_a_provider_never_reach_providers(edge_client):
    client, moto, _ = edge_client
    logs = boto3.client(
        "logs",
        endpoint_url=client.meta.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    logs.describe_log_groups()
    assert moto.targets == ["Logs_20140328.DescribeLogGroups"]


def test_provider_errors_reach_the_client_as_aws_errors(edge_client):
    client, _, _ = edge_client
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="not found"):
        client.get_item(TableName="t", Key={"id": {"S": "missing-table"}})
    with pytest.raises(Exception) as raised:
        client.get_item(TableName="t", Key={"id": {"S": "bug"}})
    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_control_paths_go_to_the_control_handler(edge_client):
    client, moto, control_calls = edge_client
    import urllib.request

    with urllib.request.urlopen(f"{client.meta.endpoint_url}/_localcloud/health") as response:
        assert json.loads(response.read()) == {"status": "ok"}
    assert control_calls == ["health"] and moto.targets == []


def test_a_valid_call_that_moto_lacks_is_a_501_naming_it(edge_client):
    client, _, _ = edge_client
    for call, name in (
        (client.describe_limits, "DescribeLimits"),
        (client.describe_endpoints, "DescribeEndpoints"),
    ):
        with pytest.raises(Exception) as raised:
            call()
        error = raised.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 501
        assert error["Error"]["Code"] == "NotImplemented"
        assert error["Error"]["Message"].startswith(f"{name} is not available on the local cloud")
