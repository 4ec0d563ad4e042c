"""AWS's 4xx for a request that no operation of the service's model accepts.

The edge asks this only after moto failed on a request (a 5xx, or an HTML page instead of an
AWS error), so the path of well-formed calls pays nothing. Unknown operations get the codes
AWS documents for each protocol: `InvalidAction` for query APIs
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html) and
`UnknownOperationException` for JSON APIs. A REST path no route matches is left to the
service's own answer. A request the model accepts but moto has no handler for (it answers an
HTML page) gets `unimplemented`'s 501 naming the operation, in the service's own format.
"""

from __future__ import annotations

from collections.abc import Sequence

from .parsing import parse_request
from .request import AwsRequest, ServiceError
from .routing import CBOR, JSON, QUERY, identify_operation, service_index
from .serializing import serialize_error
from .validation import check_constraints

Response = tuple[int, dict[str, str], bytes]


def diagnose(service_names: Sequence[str], request: AwsRequest) -> Response | None:
    """The error response AWS gives this request, or None when the model accepts it."""
    for name in service_names:
        identified = identify_operation(name, request)
        if identified is None:
            continue
        operation, protocol = identified
        try:
            check_constraints(operation, protocol, parse_request(operation, protocol, request))
        except ServiceError as error:
            return serialize_error(operation.service_model, protocol, error)
        return None
    if not service_names:
        return None
    index = service_index(service_names[0])
    protocol = _protocol_of(request, index.protocols)
    if protocol not in (QUERY, JSON, CBOR):
        return None  # a path no route matches may still be the service's own 404
    if protocol == QUERY:
        error = ServiceError(
            "InvalidAction",
            "The action or operation requested is invalid. Verify that the action is typed "
            "correctly.",
        )
    else:
        error = ServiceError("UnknownOperationException", "Unknown operation.")
    return serialize_error(index.model, protocol, error)


def _protocol_of(request: AwsRequest, supported: Sequence[str]) -> str:
    """The protocol the request speaks, among those the service supports."""
    if CBOR in supported and request.headers.get("smithy-protocol") == "rpc-v2-cbor":
        return CBOR
    if JSON in supported and request.headers.get("X-Amz-Target"):
        return JSON
    if QUERY in supported:
        return QUERY
    return supported[0]


def unimplemented(service_names: Sequence[str], request: AwsRequest) -> Response | None:
    """A 501 naming the operation, for a valid request that nothing here serves (or None)."""
    for name in service_names:
        identified = identify_operation(name, request)
        if identified is not None:
            operation, protocol = identified
            error = ServiceError(
                "NotImplemented",
                f"{operation.name} is not available on the local cloud: docs/coverage.md "
                "lists the operations it serves.",
                501,
                sender_fault=False,
            )
            return serialize_error(operation.service_model, protocol, error)
    return None
