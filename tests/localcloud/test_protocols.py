"""Round trips through botocore's own serializers, signer and parsers for every protocol we serve.

Requests are built exactly as a boto3 client builds them (serializer, endpoint preparation,
SigV4 signing), then identified and parsed by `protocols`; the result must equal the input.
Responses and errors are serialised by `protocols` and read back by botocore's parser.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from typing import Any

import botocore.model
import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSResponse, create_request_object, prepare_request_dict
from botocore.credentials import Credentials

from localcloud import protocols
from localcloud.protocols import AwsRequest, ServiceError

SESSION = botocore.session.get_session()
CW_PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]
WHEN = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)


def as_aws_request(prepared: Any) -> AwsRequest:
    """Our request type from botocore's prepared request (its body may be str, bytes or None)."""
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    return AwsRequest.from_url(prepared.method, prepared.url, dict(prepared.headers), body)


def wire_request(service: str, operation: str, params: dict, protocol: str) -> AwsRequest:
    """The HTTP request a boto3 client would send for this call, signed with SigV4."""
    model = SESSION.get_service_model(service)
    op = model.operation_model(operation)
    request = botocore.serialize.create_serializer(protocol).serialize_to_request(params, op)
    prepare_request_dict(request, endpoint_url=f"https://{model.endpoint_prefix}.example.com")
    aws_request = create_request_object(request)
    SigV4Auth(Credentials("test", "test"), model.signing_name, "eu-west-1").add_auth(aws_request)
    return as_aws_request(aws_request.prepare())


def round_trip(service: str, operation: str, params: dict, protocol: str) -> dict:
    """Send params over the wire and parse them back on the server side."""
    request = wire_request(service, operation, params, protocol)
    identified = protocols.identify_operation(service, request)
    assert identified is not None
    op, found_protocol = identified
    assert (op.name, found_protocol) == (operation, "rest-json" if "rest" in protocol else protocol)
    return protocols.parse_request(op, found_protocol, request)


def parse_response(service: str, operation: str, protocol: str, status_headers_body: tuple) -> dict:
    """What botocore's parser makes of a response we serialised."""
    status, headers, body = status_headers_body
    op = SESSION.get_service_model(service).operation_model(operation)
    response = {"status_code": status, "headers": AWSResponse("", status, headers, None).headers}
    response["body"] = body
    return botocore.parsers.create_parser(protocol).parse(response, op.output_shape)


def without_metadata(parsed: dict) -> dict:
    """A parsed response minus botocore's ResponseMetadata."""
    return {k: v for k, v in parsed.items() if k != "ResponseMetadata"}


# ---------------------------------------------------------------------------- routing helpers


def test_signing_service_comes_from_the_credential_scope() -> None:
    request = wire_request("cloudwatch", "ListMetrics", {}, "json")
    assert protocols.signing_service(request) == "monitoring"
    assert protocols.credential_scope(request).region == "eu-west-1"
    presigned = AwsRequest(
        "GET", "/", {"X-Amz-Credential": ["AKID/20240501/us-east-1/lambda/aws4_request"]}, {}
    )
    assert protocols.signing_service(presigned) == "lambda"
    assert protocols.signing_service(AwsRequest("GET", "/", {}, {})) is None


def test_service_names_share_a_signing_name() -> None:
    assert protocols.service_names_for("dynamodb")[:2] == ["dynamodb", "dynamodbstreams"]
    assert set(protocols.service_names_for("apigateway")) >= {"apigateway", "apigatewayv2"}
    assert protocols.service_names_for("monitoring") == ["cloudwatch"]
    assert protocols.service_names_for("rds")[0] == "rds"
    assert "rds-data" in protocols.service_names_for("rds-data")
    assert protocols.service_names_for("no-such-signing-name") == []


def test_headers_are_case_insensitive() -> None:
    request = AwsRequest("POST", "/", {}, {"x-amz-target": "T", "Content-Type": "x"})
    assert request.headers.get("X-Amz-Target") == "T"
    assert request.headers["content-type"] == "x"
    assert list(request.headers) == ["x-amz-target", "Content-Type"]


def test_unknown_requests_are_not_identified() -> None:
    request = wire_request("cloudwatch", "ListMetrics", {}, "json")
    assert protocols.identify_operation("dynamodb", request) is None
    bogus = AwsRequest("POST", "/", {}, {"X-Amz-Target": "GraniteServiceVersion20100801.Nope"})
    assert protocols.identify_operation("cloudwatch", bogus) is None
    assert protocols.identify_operation("lambda", AwsRequest("GET", "/nothing/here")) is None


def test_rest_routes_prefer_the_most_specific_template() -> None:
    name = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    cases = {
        "GetFunction": {"FunctionName": name},
        "GetFunctionConfiguration": {"FunctionName": name},
        "Invoke": {"FunctionName": name},
        "InvokeAsync": {"FunctionName": name, "InvokeArgs": b"{}"},
        "ListVersionsByFunction": {"FunctionName": name},
        "ListFunctions": {},
        # Same path and method; only a literal query parameter (?List=ALL, ?find=...) decides.
        "ListProvisionedConcurrencyConfigs": {"FunctionName": name},
        "GetProvisionedConcurrencyConfig": {"FunctionName": name, "Qualifier": "live"},
        "GetLayerVersionByArn": {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1"},
        "ListLayers": {},
    }
    for operation, params in cases.items():
        request = wire_request("lambda", operation, params, "rest-json")
        op, protocol = protocols.identify_operation("lambda", request)
        assert (op.name, protocol) == (operation, "rest-json")


# ---------------------------------------------------------------------------- CloudWatch


PUT_METRIC_DATA = {
    "Namespace": "Course/Lab",
    "MetricData": [
        {
            "MetricName": "Latency",
            "Dimensions": [
                {"Name": "FunctionName", "Value": "fn-a"},
                {"Name": "Stage", "Value": "x"},
            ],
            "Timestamp": WHEN,
            "Values": [1.5, 2.25, 1e-7],
            "Counts": [1.0, 3.0, 2.0],
            "Unit": "Milliseconds",
            "StorageResolution": 1,
        },
        {
            "MetricName": "Batch",
            "StatisticValues": {"SampleCount": 4.0, "Sum": 10.5, "Minimum": 0.5, "Maximum": 7.0},
        },
        {"MetricName": "Plain", "Value": -3.75, "Dimensions": []},
    ],
}


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_put_metric_data_request_round_trips(protocol: str) -> None:
    params = round_trip("cloudwatch", "PutMetricData", PUT_METRIC_DATA, protocol)
    assert params == PUT_METRIC_DATA
    assert params["MetricData"][0]["Timestamp"].tzinfo is not None


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_get_metric_data_request_round_trips(protocol: str) -> None:
    query = {
        "MetricDataQueries": [
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Duration",
                        "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                    },
                    "Period": 60,
                    "Stat": "p99.9",
                    "Unit": "Milliseconds",
                },
                "Label": "tail",
                "ReturnData": True,
            }
        ],
        "StartTime": WHEN,
        "EndTime": datetime(2024, 5, 1, 13, tzinfo=UTC),
        "ScanBy": "TimestampAscending",
        "MaxDatapoints": 500,
    }
    assert round_trip("cloudwatch", "GetMetricData", query, protocol) == query


def test_cloudwatch_gzipped_query_body_is_decompressed() -> None:
    request = wire_request("cloudwatch", "PutMetricData", PUT_METRIC_DATA, "query")
    headers = {**dict(request.headers), "Content-Encoding": "gzip"}
    zipped = AwsRequest(
        request.method, request.path, request.query, headers, gzip.compress(request.body)
    )
    op, protocol = protocols.identify_operation("cloudwatch", zipped)
    assert protocols.parse_request(op, protocol, zipped) == PUT_METRIC_DATA


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_get_metric_data_response_parses(protocol: str) -> None:
    result = {
        "MetricDataResults": [
            {
                "Id": "m1",
                "Label": "Latency Sum",
                "Timestamps": [WHEN, datetime(2024, 5, 1, 12, 31, tzinfo=UTC)],
                "Values": [5050.0, 0.125],
                "StatusCode": "PartialData",
                "Messages": [
                    {"Code": "MultipleUnits", "Value": "Multiple units returned: '[A, B]'"}
                ],
            },
            {"Id": "empty", "Label": "x", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
        ],
        "NextToken": "token-1",
        "Messages": [],
    }
    op = SESSION.get_service_model("cloudwatch").operation_model("GetMetricData")
    wire = protocols.serialize_response(op, protocol, result, request_id="req-1")
    parsed = parse_response("cloudwatch", "GetMetricData", protocol, wire)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert wire[1]["x-amzn-RequestId"] == "req-1"
    if protocol != "query":  # XML cannot tell an empty list from an absent one
        assert without_metadata(parsed) == result
    else:
        assert parsed["MetricDataResults"] == result["MetricDataResults"]
        assert parsed["NextToken"] == "token-1"


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_statistics_response_parses(protocol: str) -> None:
    result = {
        "Label": "Duration",
        "Datapoints": [
            {
                "Timestamp": WHEN,
                "SampleCount": 100.0,
                "Average": 50.5,
                "Unit": "Milliseconds",
                "ExtendedStatistics": {"p99": 99.0, "p50": 50.0},
            }
        ],
    }
    op = SESSION.get_service_model("cloudwatch").operation_model("GetMetricStatistics")
    wire = protocols.serialize_response(op, protocol, result)
    assert (
        without_metadata(parse_response("cloudwatch", "GetMetricStatistics", protocol, wire))
        == result
    )


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_put_metric_data_has_an_empty_response(protocol: str) -> None:
    op = SESSION.get_service_model("cloudwatch").operation_model("PutMetricData")
    status, headers, body = protocols.serialize_response(op, protocol, {})
    assert status == 200
    parsed = parse_response("cloudwatch", "PutMetricData", protocol, (status, headers, body))
    assert without_metadata(parsed) == {}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_errors_keep_the_query_error_code(protocol: str) -> None:
    error = ServiceError("InvalidParameterValue", "The value <bad> & more is invalid.")
    wire = protocols.serialize_error(SESSION.get_service_model("cloudwatch"), protocol, error)
    assert wire[0] == 400
    parsed = parse_response("cloudwatch", "PutMetricData", protocol, wire)
    assert parsed["Error"]["Code"] == "InvalidParameterValue"
    assert parsed["Error"]["Message"] == "The value <bad> & more is invalid."
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400
    if protocol != "query":  # the JSON/CBOR body names the modelled exception shape
        assert parsed["Error"]["QueryErrorCode"] == "InvalidParameterValueException"


@pytest.mark.parametrize("protocol", CW_PROTOCOLS)
def test_cloudwatch_client_raises_the_modelled_exception(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real boto3 client, forced onto one protocol, gets our error as its exception class."""
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", (protocol,))
    client = SESSION.create_client(
        "cloudwatch",
        "us-east-1",
        endpoint_url="http://localhost:1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    seen: dict[str, Any] = {}

    def answer(request: Any, **_: Any) -> AWSResponse:
        incoming = as_aws_request(request)
        op, seen["protocol"] = protocols.identify_operation("cloudwatch", incoming)
        seen["params"] = protocols.parse_request(op, seen["protocol"], incoming)
        error = ServiceError("InvalidParameterCombination", "no way")
        status, headers, body = protocols.serialize_error(op.service_model, seen["protocol"], error)
        return AWSResponse(request.url, status, headers, _Raw(body))

    client.meta.events.register("before-send.cloudwatch", answer)
    with pytest.raises(client.exceptions.InvalidParameterCombinationException) as caught:
        client.list_metrics(Namespace="Course/Lab")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert seen == {"protocol": protocol, "params": {"Namespace": "Course/Lab"}}


class _Raw:
    """The minimal raw stream AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self._body]


# ---------------------------------------------------------------------------- query: RDS


def test_rds_create_db_cluster_request_round_trips() -> None:
    params = {
        "DBClusterIdentifier": "course-aurora",
        "Engine": "aurora-mysql",
        "EngineVersion": "8.0.mysql_aurora.3.08.0",
        "Port": 3306,
        "VpcSecurityGroupIds": ["sg-1", "sg-2"],
        "AvailabilityZones": ["us-east-1a"],
        "Tags": [{"Key": "course", "Value": "lab"}, {"Key": "run_id", "Value": "r1"}],
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 4.0},
        "EnableHttpEndpoint": True,
        "DeletionProtection": False,
        "ManageMasterUserPassword": True,
    }
    assert round_trip("rds", "CreateDBCluster", params, "query") == params


def test_rds_describe_db_clusters_request_with_nested_filters() -> None:
    params = {
        "Filters": [
            {"Name": "engine", "Values": ["aurora-mysql", "aurora-postgresql"]},
            {"Name": "db-cluster-id", "Values": []},
        ],
        "MaxRecords": 20,
    }
    assert round_trip("rds", "DescribeDBClusters", params, "query") == params


def test_rds_describe_db_clusters_response_parses() -> None:
    result = {
        "Marker": "next",
        "DBClusters": [
            {
                "DBClusterIdentifier": "course-aurora",
                "Status": "available",
                "Port": 3306,
                "Endpoint": "127.0.0.1",
                "ClusterCreateTime": WHEN,
                "HttpEndpointEnabled": True,
                "DBClusterMembers": [{"DBInstanceIdentifier": "w1", "IsClusterWriter": True}],
                "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1", "Status": "active"}],
                "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 4.0},
                "TagList": [{"Key": "course", "Value": "a<b&c"}],
            }
        ],
    }
    op = SESSION.get_service_model("rds").operation_model("DescribeDBClusters")
    status, headers, body = protocols.serialize_response(op, "query", result, request_id="r-9")
    assert b"<DescribeDBClustersResult>" in body and b"<DBCluster>" in body
    parsed = parse_response("rds", "DescribeDBClusters", "query", (status, headers, body))
    assert without_metadata(parsed) == result
    assert parsed["ResponseMetadata"]["RequestId"] == "r-9"


def test_rds_error_parses() -> None:
    error = ServiceError("DBClusterNotFoundFault", "DBCluster x not found.", 404)
    wire = protocols.serialize_error(SESSION.get_service_model("rds"), "query", error)
    parsed = parse_response("rds", "DescribeDBClusters", "query", wire)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "DBClusterNotFoundFault",
        "Message": "DBCluster x not found.",
    }
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "x-amzn-query-error" not in wire[1]


# ---------------------------------------------------------------------------- json: DynamoDB, Logs


def test_dynamodb_put_item_request_round_trips() -> None:
    params = {
        "TableName": "customers",
        "Item": {
            "pk": {"S": "c-1"},
            "n": {"N": "42"},
            "b": {"B": b"\x00\xffbin"},
            "tags": {"SS": ["a", "b"]},
            "nested": {"M": {"flag": {"BOOL": True}, "nothing": {"NULL": True}}},
        },
        "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValues": "ALL_OLD",
    }
    assert round_trip("dynamodb", "PutItem", params, "json") == params


def test_dynamodb_get_item_response_and_error_parse() -> None:
    op = SESSION.get_service_model("dynamodb").operation_model("GetItem")
    result = {"Item": {"pk": {"S": "c-1"}, "b": {"B": b"\x01\x02"}, "l": {"L": [{"N": "1"}]}}}
    wire = protocols.serialize_response(op, "json", result)
    assert wire[1]["Content-Type"] == "application/x-amz-json-1.0"
    assert without_metadata(parse_response("dynamodb", "GetItem", "json", wire)) == result
    error = ServiceError("ConditionalCheckFailedException", "The conditional request failed")
    wire = protocols.serialize_error(op.service_model, "json", error)
    parsed = parse_response("dynamodb", "GetItem", "json", wire)
    assert parsed["Error"]["Code"] == "ConditionalCheckFailedException"
    assert parsed["Error"]["Message"] == "The conditional request failed"


def test_logs_uses_json_1_1_and_epoch_millisecond_longs() -> None:
    op = SESSION.get_service_model("logs").operation_model("DescribeLogGroups")
    result = {
        "logGroups": [
            {"logGroupName": "/aws/lambda/f", "creationTime": 1714566615250, "retentionInDays": 7}
        ]
    }
    wire = protocols.serialize_response(op, "json", result)
    assert wire[1]["Content-Type"] == "application/x-amz-json-1.1"
    assert without_metadata(parse_response("logs", "DescribeLogGroups", "json", wire)) == result


# ---------------------------------------------------------------------------- rest-json: Lambda


def test_lambda_invoke_request_round_trips_headers_and_blob_payload() -> None:
    params = {
        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
        "InvocationType": "Event",
        "LogType": "Tail",
        "ClientContext": base64.b64encode(b'{"custom": 1}').decode(),
        "Payload": b'{"order": 42, "bytes": "\\u00ff"}',
        "Qualifier": "$LATEST",
    }
    assert round_trip("lambda", "Invoke", params, "rest-json") == params


def test_lambda_get_function_request_has_a_path_label() -> None:
    request = wire_request(
        "lambda", "GetFunction", {"FunctionName": "my fn/odd", "Qualifier": "3"}, "rest-json"
    )
    assert "my%20fn%2Fodd" in request.path
    op, protocol = protocols.identify_operation("lambda", request)
    assert protocols.parse_request(op, protocol, request) == {
        "FunctionName": "my fn/odd",
        "Qualifier": "3",
    }


def test_lambda_invoke_response_sets_status_headers_and_raw_payload() -> None:
    op = SESSION.get_service_model("lambda").operation_model("Invoke")
    result = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "LogResult": base64.b64encode(b"START RequestId: 1\n").decode(),
        "ExecutedVersion": "$LATEST",
        "Payload": b'{"errorMessage": "boom"}',
    }
    status, headers, body = protocols.serialize_response(op, "rest-json", result)
    assert (status, body) == (200, b'{"errorMessage": "boom"}')
    parsed = parse_response("lambda", "Invoke", "rest-json", (status, headers, body))
    # botocore hands a blob payload through as the raw body (a stream for a real client).
    assert parsed.pop("Payload") == '{"errorMessage": "boom"}'
    assert without_metadata(parsed) == {k: v for k, v in result.items() if k != "Payload"}
    accepted = protocols.serialize_response(op, "rest-json", {"StatusCode": 202, "Payload": b""})
    assert accepted[0] == 202


def test_lambda_get_function_response_parses() -> None:
    op = SESSION.get_service_model("lambda").operation_model("GetFunction")
    result = {
        "Configuration": {
            "FunctionName": "my-fn",
            "MemorySize": 512,
            "Timeout": 30,
            "Environment": {"Variables": {"TABLE": "customers"}},
            "Layers": [{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1", "CodeSize": 10}],
        },
        "Code": {"RepositoryType": "S3", "Location": "https://example/code.zip"},
        "Tags": {"course": "lab"},
    }
    wire = protocols.serialize_response(op, "rest-json", result)
    assert without_metadata(parse_response("lambda", "GetFunction", "rest-json", wire)) == result


def test_lambda_error_uses_the_error_type_header() -> None:
    error = ServiceError("ResourceNotFoundException", "Function not found: my-fn", 404)
    wire = protocols.serialize_error(SESSION.get_service_model("lambda"), "rest-json", error)
    assert wire[1]["x-amzn-ErrorType"] == "ResourceNotFoundException"
    parsed = parse_response("lambda", "GetFunction", "rest-json", wire)
    assert parsed["Error"]["Code"] == "ResourceNotFoundException"
    assert parsed["Error"]["Message"] == "Function not found: my-fn"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---------------------------------------------------------------------------- rest-json: rds-data


def test_rds_data_execute_statement_round_trips() -> None:
    params = {
        "resourceArn": "arn:aws:rds:us-east-1:123456789012:cluster:course-aurora",
        "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        "sql": "INSERT INTO t VALUES (:id, :blob, :price)",
        "database": "lab",
        "parameters": [
            {"name": "id", "value": {"longValue": 7}},
            {"name": "blob", "value": {"blobValue": b"\x00\x01"}},
            {"name": "price", "value": {"doubleValue": 9.5}, "typeHint": "DECIMAL"},
        ],
        "includeResultMetadata": True,
        "formatRecordsAs": "NONE",
    }
    assert round_trip("rds-data", "ExecuteStatement", params, "rest-json") == params
    op = SESSION.get_service_model("rds-data").operation_model("ExecuteStatement")
    result = {
        "records": [[{"longValue": 7}, {"blobValue": b"\x00\x01"}, {"isNull": True}]],
        "columnMetadata": [{"name": "id", "typeName": "INT", "nullable": 0}],
        "numberOfRecordsUpdated": 1,
        "generatedFields": [{"longValue": 7}],
    }
    wire = protocols.serialize_response(op, "rest-json", result)
    assert (
        without_metadata(parse_response("rds-data", "ExecuteStatement", "rest-json", wire))
        == result
    )


def test_malformed_bodies_become_service_errors() -> None:
    op = SESSION.get_service_model("dynamodb").operation_model("GetItem")
    broken = AwsRequest(
        "POST", "/", {}, {"X-Amz-Target": "DynamoDB_20120810.GetItem"}, b"{not json"
    )
    with pytest.raises(ServiceError) as caught:
        protocols.parse_request(op, "json", broken)
    assert caught.value.code == "SerializationException"


def test_broken_gzip_is_a_client_error_not_a_crash() -> None:
    request = wire_request("cloudwatch", "PutMetricData", PUT_METRIC_DATA, "query")
    headers = {**dict(request.headers), "Content-Encoding": "gzip"}
    broken = AwsRequest(request.method, request.path, request.query, headers, b"not gzip")
    assert protocols.identify_operation("cloudwatch", broken) is None  # no Action readable
    op = SESSION.get_service_model("cloudwatch").operation_model("PutMetricData")
    with pytest.raises(ServiceError) as caught:
        protocols.parse_request(op, "query", broken)
    assert caught.value.code == "SerializationException"
