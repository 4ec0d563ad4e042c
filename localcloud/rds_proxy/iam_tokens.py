"""Checking an IAM auth token (`rds.generate_db_auth_token`) as far as the local cloud can.

A token is a SigV4 presigned URL for the `rds-db` service and the `connect` action
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.IAMDBAuth.Connecting.html).
Checked here: the action, the user, the host and port it was made for (the proxy endpoint),
the region and service of its credential scope, its expiry (X-Amz-Expires, at most 900 s,
from X-Amz-Date) and its signature, recomputed with the local cloud's credentials. Not
checked: whether an IAM policy allows `rds-db:connect` on the proxy's resource for the
caller (the local cloud has no IAM policy evaluation) and session tokens of temporary
credentials.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import parse_qsl, quote

from ..config import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

MAX_EXPIRES = 900
_SIGNED = {"X-Amz-Signature"}
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # botocore signs the empty body


def check_token(
    token: str, user: str, host: str, port: int, region: str, now: datetime.datetime | None = None
) -> str | None:
    """None if the token lets `user` connect to host:port; otherwise why not."""
    where, _, query = token.partition("/?")
    if where != f"{host}:{port}":
        return f"the token was made for {where!r}, not this proxy endpoint"
    params = dict(parse_qsl(query, keep_blank_values=True))
    if params.get("Action") != "connect":
        return "the token's action is not connect"
    if params.get("DBUser") != user:
        return f"the token was made for user {params.get('DBUser')!r}"
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "the token is not signed with AWS4-HMAC-SHA256"
    scope = params.get("X-Amz-Credential", "").split("/")
    if len(scope) != 5 or scope[2:] != [region, "rds-db", "aws4_request"]:
        return "the token's credential scope is not rds-db in this region"
    try:
        signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return "the token has no valid X-Amz-Date or X-Amz-Expires"
    now = now or datetime.datetime.now(datetime.UTC)
    if not 0 < expires <= MAX_EXPIRES or now > signed_at + datetime.timedelta(seconds=expires):
        return "the token has expired"
    if now < signed_at - datetime.timedelta(minutes=5):
        return "the token is dated in the future"
    if scope[0] != DUMMY_ACCESS_KEY_ID:
        return "the token is signed with credentials the local cloud does not know"
    expected = _signature(params, f"{host}:{port}", scope, DUMMY_SECRET_ACCESS_KEY)
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        return "the token's signature does not match"
    return None


def _signature(params: dict[str, str], host: str, scope: list[str], secret: str) -> str:
    """SigV4 of a presigned GET (query-string authentication)."""
    pairs = sorted((k, v) for k, v in params.items() if k not in _SIGNED)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    canonical = "\n".join(["GET", "/", query, f"host:{host}", "", "host", _EMPTY_SHA256])
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            "/".join(scope[1:]),
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in scope[1:]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
