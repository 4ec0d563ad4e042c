"""Who may call the edge, and which service and region a request is signed for."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .. import protocols
from .errors import EdgeError

_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")


def check_caller(environ: Mapping[str, Any]) -> None:
    """Refuse web pages (Origin, Sec-Fetch-Site) and foreign Host names (DNS rebinding)."""
    host = environ.get("HTTP_HOST")
    if not host or not _is_own_authority(host, str(environ.get("SERVER_PORT", ""))):
        raise EdgeError(403, "AccessDenied", f"Host {host!r} is not this local cloud's address.")
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        parts = urlsplit(origin)
        own = parts.scheme == "http" and _is_own_authority(parts.netloc, environ["SERVER_PORT"])
        if not own:
            raise EdgeError(403, "AccessDenied", f"Requests from {origin!r} are not accepted.")
    # Browsers send this even where they leave out Origin; SDKs and curl never send it.
    if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
        raise EdgeError(403, "AccessDenied", "Requests from other sites are not accepted.")


@functools.lru_cache(maxsize=256)  # the same few Host values on every request
def _is_own_authority(authority: str, port: str) -> bool:
    """True for a loopback name or address with the daemon's port ('127.0.0.1:4766')."""
    host, _, given_port = authority.rpartition(":")
    if given_port != port or not host:
        return False
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def signing_scope(environ: Mapping[str, Any]) -> tuple[str, str]:
    """Region and signing name of a SigV4 request, or the error AWS answers without one."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization:
        match = _SCOPE.search(authorization)
        if match is None:
            raise EdgeError(
                400,
                "IncompleteSignature",
                "Authorization header requires a SigV4 'Credential' parameter "
                "(Credential=<key>/<date>/<region>/<service>/aws4_request).",
            )
        region, service = match.groups()
    else:
        presigned = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
        parts = unquote(presigned).split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise EdgeError(403, "MissingAuthenticationToken", "Missing Authentication Token")
        region, service = parts[2], parts[3]
    if not protocols.service_names_for(service):
        raise EdgeError(
            403,
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid service, not {service!r}.",
        )
    if region not in protocols.known_regions():
        raise EdgeError(
            403,
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid region, not {region!r}.",
        )
    return region, service
