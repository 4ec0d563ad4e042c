"""AWS wire protocols, driven by botocore's service models, for the local cloud's providers.

A provider works with plain dicts shaped like boto3's input and output. This module turns an
HTTP request into such a dict and a result dict (or a `ServiceError`) back into an HTTP
response that botocore's own parser accepts, for the protocols botocore speaks:

- ``query``: form-encoded ``Action=...`` requests, XML responses (RDS, ElastiCache, old CloudWatch);
- ``json``: ``X-Amz-Target`` requests, awsJson 1.0/1.1 (DynamoDB, Logs, CloudWatch);
- ``smithy-rpc-v2-cbor``: ``/service/<Svc>/operation/<Op>`` with CBOR bodies (CloudWatch);
- ``rest-json``: method + URI template, headers, query string, payload (Lambda, rds-data).

Not covered: ``rest-xml`` (S3 style), ``ec2``, event streams. Timestamps are returned as
ISO 8601 (query), epoch seconds (json) and CBOR tag 1 (cbor); headers use RFC 822. Services
with the ``awsQueryCompatible`` trait get an ``x-amzn-query-error`` header on errors so that
botocore reports the query-style error code (``InvalidParameterValue``) on every protocol.
"""

from .diagnosis import diagnose, unimplemented
from .parsing import parse_request
from .request import AwsRequest, CIHeaders, ServiceError, unless_missing
from .routing import (
    CBOR,
    JSON,
    QUERY,
    REST_JSON,
    CredentialScope,
    credential_scope,
    identify_operation,
    known_regions,
    protocol_of,
    service_model,
    service_names_for,
    signing_service,
)
from .serializing import serialize_error, serialize_response
from .shapes import as_datetime
from .validation import check_constraints

__all__ = [
    "CBOR",
    "JSON",
    "QUERY",
    "REST_JSON",
    "AwsRequest",
    "CIHeaders",
    "CredentialScope",
    "ServiceError",
    "unless_missing",
    "as_datetime",
    "check_constraints",
    "credential_scope",
    "diagnose",
    "unimplemented",
    "identify_operation",
    "known_regions",
    "parse_request",
    "protocol_of",
    "serialize_error",
    "serialize_response",
    "service_model",
    "service_names_for",
    "signing_service",
]
