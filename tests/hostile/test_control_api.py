"""The daemon's control API against a web page the student visits.

Before: `/_localcloud/reset` and `/shutdown` answered a cross-site GET on a predictable port,
so any page could wipe the local databases. Now a call that changes something takes only a
POST with the token from `daemon.json` (0600), and the edge refuses foreign Origin,
Sec-Fetch-Site and Host (DNS rebinding) values. Each attack is checked for its answer and
that it changed nothing: a table made before it is still there, the daemon still serves.
"""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from local_clients import local_client

from localcloud import daemon
from localcloud.config import daemon_info_path, state_dir

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def control(
    cloud: daemon.DaemonInfo, name: str, method: str = "GET", **headers: str
) -> tuple[int, Any]:
    """Call a control path as a browser might, with these headers; status and JSON answer."""
    request = urllib.request.Request(
        f"{cloud.endpoint}/_localcloud/{name}",
        method=method,
        data=b"x=1" if method == "POST" else None,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )
    try:
        with _DIRECT.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def table(cloud: daemon.DaemonInfo) -> Iterator[str]:
    """A DynamoDB table that a successful reset would wipe."""
    client = local_client(cloud, "dynamodb")
    name = f"control-{uuid.uuid4().hex[:6]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    yield name
    assert name in client.list_tables()["TableNames"], "an attack reset the local cloud"
    assert daemon.running() is not None, "an attack stopped the daemon"
    client.delete_table(TableName=name)


ATTACKS: dict[str, tuple[str, str, dict[str, str], int]] = {
    # name: (call, method, headers, status)
    "cross-site GET (img tag)": ("reset", "GET", {"Sec-Fetch-Site": "cross-site"}, 403),
    "GET without browser headers": ("reset", "GET", {}, 405),
    "cross-site form POST": ("shutdown", "POST", {"Origin": "http://evil.example"}, 403),
    "same-site page on another port": ("reset", "POST", {"Origin": "http://localhost:8888"}, 403),
    "opaque origin (sandboxed iframe)": ("reset", "POST", {"Origin": "null"}, 403),
    "POST without the token": ("reset", "POST", {}, 403),
    "POST with a wrong token": ("shutdown", "POST", {"X-LocalCloud-Token": "guess"}, 403),
    "CORS preflight": ("reset", "OPTIONS", {"Origin": "http://evil.example"}, 403),
    "DNS rebinding, reading status": ("status", "GET", {"Host": "evil.example:{port}"}, 403),
    "DNS rebinding, with the token": ("reset", "POST", {"Host": "evil.example:{port}"}, 403),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_on_the_control_api_change_nothing(cloud, table, name):
    call, method, headers, status = ATTACKS[name]
    headers = {k: v.format(port=cloud.port) for k, v in headers.items()}
    if name.endswith("with the token"):
        headers["X-LocalCloud-Token"] = cloud.token
    answered, answer = control(cloud, call, method, **headers)
    assert answered == status, answer
    assert "reset" not in answer and "stopping" not in answer


def test_the_aws_api_refuses_rebound_host_names_and_web_pages(cloud):
    """DNS rebinding or a page's fetch must not reach moto either (moto answers CORS)."""
    for headers in ({"Host": f"attacker.example:{cloud.port}"}, {"Origin": "http://evil.example"}):
        request = urllib.request.Request(
            f"{cloud.endpoint}/",
            method="POST",
            data=b"{}",
            headers={
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/"
                "dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Content-Type": "application/x-amz-json-1.0",
                **headers,
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            _DIRECT.open(request, timeout=30)
        assert refused.value.code == 403
        assert json.loads(refused.value.read())["__type"] == "AccessDeniedException"


def test_the_info_file_is_private_and_its_token_works(cloud):
    mode = stat.S_IMODE(daemon_info_path(state_dir()).stat().st_mode)
    assert mode == 0o600
    assert cloud.token and daemon.DaemonInfo.read().token == cloud.token
    # Reads stay open to the CLI and helpers (loopback, no browser headers) ...
    assert control(cloud, "health")[0] == 200
    assert isinstance(daemon.call(cloud, "endpoints"), dict)
    # ... and the CLI's POST with the token still resets.
    assert daemon.call(cloud, "reset", method="POST") == {"reset": True}
