"""Malformed requests get AWS's 4xx and error code, never a 500 or an HTML page.

Before: unsigned or badly signed requests, bad framing and unknown regions got werkzeug's
500 page; wrongly typed Data API JSON got a 500 with Python exception text
(`booleanValue: "false"` was even taken as true); CloudWatch query requests missing required
members got a 500 KeyError; Lambda ran `InvocationType: Bogus` synchronously, and a function
name with `%2F` went to moto, which answered 200 without running anything. The typed checks
now come from botocore's model, once, in `localcloud/protocols/` for every provider; where
moto serves a call and fails on its input (a 500, or an empty HTML page for an unknown action),
the same model check answers instead.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
from local_clients import local_client

from localcloud import daemon

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:hostile"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostile"
DDB = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def auth(service: str, region: str = "us-east-1") -> dict[str, str]:
    """An Authorization header with a SigV4 scope (the local cloud does not check signatures)."""
    scope = f"test/20240101/{region}/{service}/aws4_request"
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"
    }


def send(
    cloud: daemon.DaemonInfo,
    headers: dict[str, str],
    body: bytes = b"",
    path: str = "/",
    framing: str | None = None,
) -> tuple[int, str]:
    """POST over a raw socket; the status and the AWS error code answered."""
    framing = framing if framing is not None else f"Content-Length: {len(body)}\r\n"
    # Connection: close: the edge keeps HTTP/1.1 connections alive, and this reads to EOF.
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{cloud.port}\r\nConnection: close\r\n{framing}"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", cloud.port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    head_text, _, payload = rest.partition(b"\r\n\r\n")
    error_type = re.search(rb"(?im)^x-amzn-ErrorType: *([^\r\n:]+)", head_text)
    if error_type:
        code = error_type.group(1).decode()
    elif payload.startswith(b"<"):
        code = re.search(rb"<Code>([^<]+)</Code>", payload).group(1).decode()
    else:
        code = json.loads(payload)["__type"]
    return int(status_line.split()[1]), code


FRAMING_AND_SIGNING: dict[str, tuple[dict[str, str], bytes, str | None, int, str]] = {
    # name: (headers, body, framing, status, code)
    "unsigned": (DDB, b"{}", None, 403, "MissingAuthenticationTokenException"),
    "unsigned form post (moto-api)": (FORM, b"x=1", None, 403, "MissingAuthenticationToken"),
    "garbage Authorization": (
        {**DDB, "Authorization": "garbage"},
        b"{}",
        None,
        400,
        "IncompleteSignatureException",
    ),
    "unknown signing service": (
        {**FORM, **auth("nosuchservice")},
        b"Action=Go",
        None,
        403,
        "SignatureDoesNotMatch",
    ),
    "unknown region": (
        {**DDB, **auth("dynamodb", "mars-1")},
        b"{}",
        None,
        403,
        "InvalidSignatureException",
    ),
    "non-numeric Content-Length": (
        {**DDB, **auth("dynamodb")},
        b"{}",
        "Content-Length: abc\r\n",
        400,
        "BadRequestException",
    ),
    "negative Content-Length": (
        {**DDB, **auth("dynamodb")},
        b"{}",
        "Content-Length: -5\r\n",
        400,
        "BadRequestException",
    ),
    "bad chunk size": (
        {**DDB, **auth("dynamodb")},
        b"zz\r\n{}\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n",
        400,
        "BadRequestException",
    ),
    "Content-Length and chunked": (
        {**DDB, **auth("dynamodb")},
        b"2\r\n{}\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 11\r\n",
        400,
        "BadRequestException",
    ),
}


@pytest.mark.parametrize("name", list(FRAMING_AND_SIGNING))
def test_bad_signing_and_framing_get_aws_4xx(cloud, name):
    headers, body, framing, status, code = FRAMING_AND_SIGNING[name]
    assert send(cloud, headers, body, framing=framing) == (status, code)


def data_api(**members: object) -> str:
    """An ExecuteStatement body with these members over a valid base."""
    return json.dumps({"resourceArn": CLUSTER, "secretArn": SECRET, "sql": "SELECT 1", **members})


PROVIDER_INPUT: dict[str, tuple[str, dict[str, str], bytes | str, int, str]] = {
    # name: (path, headers, body, status, code)
    "Data API parameters as a string": (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        data_api(parameters="abc"),
        400,
        "BadRequestException",
    ),
    "Data API value as a string": (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        data_api(parameters=[{"name": "a", "value": "abc"}]),
        400,
        "BadRequestException",
    ),
    'Data API booleanValue "false"': (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        data_api(parameters=[{"name": "a", "value": {"booleanValue": "false"}}]),
        400,
        "BadRequestException",
    ),
    "Data API value with two fields": (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        data_api(parameters=[{"name": "a", "value": {"longValue": 1, "stringValue": "1"}}]),
        400,
        "ValidationException",
    ),
    "Data API sql a number": (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        data_api(sql=5),
        400,
        "BadRequestException",
    ),
    "Data API list body": (
        "/Execute",
        {"Content-Type": "application/json", **auth("rds-data")},
        b"[]",
        400,
        "BadRequestException",
    ),
    "CloudWatch PutMetricData without Namespace": (
        "/",
        {**FORM, **auth("monitoring")},
        b"Action=PutMetricData&Version=2010-08-01&MetricData.member.1.Value=1",
        400,
        "MissingParameter",
    ),
    "CloudWatch metric without MetricName": (
        "/",
        {**FORM, **auth("monitoring")},
        b"Action=PutMetricData&Version=2010-08-01&Namespace=N&MetricData.member.1.Value=1",
        400,
        "MissingParameter",
    ),
    "Lambda InvocationType Bogus": (
        "/2015-03-31/functions/anything/invocations",
        {"X-Amz-Invocation-Type": "Bogus", **auth("lambda")},
        b"{}",
        400,
        "ValidationException",
    ),
    "Lambda function name with %2F": (
        "/2015-03-31/functions/a%2Fb/invocations",
        auth("lambda"),
        b"{}",
        400,
        "ValidationException",
    ),
}


@pytest.mark.parametrize("name", list(PROVIDER_INPUT))
def test_wrongly_shaped_provider_input_gets_aws_4xx(cloud, name):
    path, headers, body, status, code = PROVIDER_INPUT[name]
    raw = body.encode() if isinstance(body, str) else body
    assert send(cloud, headers, raw, path=path) == (status, code)


def ecs(operation: str) -> dict[str, str]:
    """Headers of an ECS (awsJson 1.1) call."""
    return {
        "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
        **auth("ecs"),
    }


def form(service: str, version: str, members: str) -> tuple[dict[str, str], str]:
    """Headers and body of a query-protocol call."""
    return {**FORM, **auth(service)}, f"Version={version}&{members}"


RDS, ELB = ("rds", "2014-10-31"), ("elasticloadbalancing", "2015-12-01")
APIGW = {"Content-Type": "application/json", **auth("apigateway")}

# Control-plane calls the course makes, sent wrong. Before, moto answered the ECS and unknown
# action cases with a 500 or an empty HTML page.
CONTROL_PLANE_INPUT: dict[str, tuple[str, dict[str, str], bytes | str, int, str]] = {
    "ECS body a JSON list": ("/", ecs("ListClusters"), "[]", 400, "SerializationException"),
    "ECS body not JSON": ("/", ecs("RunTask"), "{nope", 400, "SerializationException"),
    "ECS task definition without containers": (
        "/",
        ecs("RegisterTaskDefinition"),
        json.dumps({"family": "f"}),
        400,
        "ValidationException",
    ),
    "ECS containerDefinitions a string": (
        "/",
        ecs("RegisterTaskDefinition"),
        json.dumps({"family": "f", "containerDefinitions": "x"}),
        400,
        "SerializationException",
    ),
    "ECS unknown operation": ("/", ecs("Bogus"), "{}", 400, "UnknownOperationException"),
    "RDS unknown action": ("/", *form(*RDS, "Action=Bogus"), 400, "InvalidAction"),
    "RDS cluster without Engine": (
        "/",
        *form(*RDS, "Action=CreateDBCluster&DBClusterIdentifier=a"),
        400,
        "MissingParameter",
    ),
    "RDS capacity not a number": (
        "/",
        *form(
            *RDS,
            "Action=CreateDBCluster&DBClusterIdentifier=a&Engine=aurora-mysql"
            "&ServerlessV2ScalingConfiguration.MinCapacity=abc",
        ),
        400,
        "InvalidParameterValue",
    ),
    "ELBv2 unknown action": ("/", *form(*ELB, "Action=Bogus"), 400, "InvalidAction"),
    "ELBv2 target group port 99999": (
        "/",
        *form(*ELB, "Action=CreateTargetGroup&Name=t&Protocol=HTTP&Port=99999&VpcId=vpc-1"),
        400,
        "ValidationError",
    ),
    "ELBv2 listener port not a number": (
        "/",
        *form(*ELB, "Action=CreateListener&LoadBalancerArn=x&Port=abc"),
        400,
        "InvalidParameterValue",
    ),
    "API Gateway body not JSON": ("/v2/apis", APIGW, "{nope", 400, "BadRequestException"),
    "API Gateway name a number": (
        "/v2/apis",
        APIGW,
        json.dumps({"name": 5, "protocolType": "HTTP"}),
        400,
        "BadRequestException",
    ),
    "API Gateway protocol BOGUS": (
        "/v2/apis",
        APIGW,
        json.dumps({"name": "a", "protocolType": "BOGUS"}),
        400,
        "ValidationException",
    ),
}


@pytest.mark.parametrize("name", list(CONTROL_PLANE_INPUT))
def test_wrong_control_plane_calls_get_aws_4xx(cloud, name):
    path, headers, body, status, code = CONTROL_PLANE_INPUT[name]
    raw = body.encode() if isinstance(body, str) else body
    assert send(cloud, headers, raw, path=path) == (status, code)


def test_the_daemon_serves_after_the_bad_input(cloud):
    assert daemon.call(cloud, "health")["status"] == "ok"
    client = local_client(cloud, "cloudwatch")
    client.put_metric_data(Namespace="Hostile/After", MetricData=[{"MetricName": "M", "Value": 1}])
    assert client.list_metrics(Namespace="Hostile/After")["Metrics"]
