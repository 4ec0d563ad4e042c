"""Listener-rule matching and the ALB's own answers, as pure functions.

Rules are the dicts that DescribeRules returns (moto keeps them). A rule matches when every
one of its conditions matches; a condition matches when any of its values does. Wildcards
`*` (any run of characters) and `?` (one character) work in path-pattern, host-header,
http-header and query-string values; a backslash makes the next character literal. Paths
are compared case-sensitively; host names, header values and query strings are not (as the
ELBv2 API reference describes each condition). Also here: the error-page template, the
health-check matcher, X-Forwarded-For and X-Amzn-Trace-Id values, and redirect URLs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# AWS's error-page template: 162 bytes for the 503 and 122 for the 502.
_PAGE = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n</body>\r\n</html>\r\n"  # noqa: E501
ERROR_TITLES = {
    301: "301 Moved Permanently",  # redirect bodies in this template are unconfirmed
    302: "302 Found",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",  # this and 501 / 505: assumed to follow the same template
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    501: "501 Not Implemented",
    504: "504 Gateway Time-out",  # unconfirmed: assumed to follow the same template
    505: "505 HTTP Version Not Supported",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the rule conditions look at in one request."""

    method: str
    path: str  # without the query string
    query: str  # the raw query string, without "?"
    host: str  # the Host header without its port
    headers: tuple[tuple[str, str], ...] = ()


def error_page(status: int) -> bytes:
    """The HTML body of a response the load balancer generates itself."""
    return _PAGE.format(ERROR_TITLES.get(status, str(status))).encode()


@functools.lru_cache(maxsize=1024)
def wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """A compiled full-match regex for an ALB value with * and ? wildcards."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    return re.compile("".join(parts), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def _values(condition: dict[str, Any], config: str) -> list[Any]:
    """A condition's values from its XxxConfig, or from the legacy top-level Values."""
    found = (condition.get(config) or {}).get("Values")
    return list(found if found else condition.get("Values") or [])


def _query_pairs(query: str) -> list[tuple[str | None, str]]:
    """The query string as (key, value) pairs, raw; a bare word is a value without key."""
    pairs: list[tuple[str | None, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        pairs.append((key, value) if sep else (None, key))
    return pairs


def condition_matches(condition: dict[str, Any], request: RequestInfo) -> bool:
    """True when the request satisfies one rule condition (unknown fields never match)."""
    field = condition.get("Field")
    if field == "path-pattern":
        values = _values(condition, "PathPatternConfig")
        return any(wildcard(v, True).fullmatch(request.path) for v in values)
    if field == "host-header":
        values = _values(condition, "HostHeaderConfig")
        return any(wildcard(v, False).fullmatch(request.host) for v in values)
    if field == "http-request-method":
        return request.method in _values(condition, "HttpRequestMethodConfig")
    if field == "http-header":
        config = condition.get("HttpHeaderConfig") or {}
        name = (config.get("HttpHeaderName") or "").lower()
        found = [v for k, v in request.headers if k.lower() == name]
        patterns = [wildcard(v, False) for v in config.get("Values") or []]
        return any(p.fullmatch(value) for p in patterns for value in found)
    if field == "query-string":
        pairs = _query_pairs(request.query)
        for wanted in (condition.get("QueryStringConfig") or {}).get("Values") or []:
            value_pattern = wildcard(wanted.get("Value", ""), False)
            key = wanted.get("Key")
            for have_key, have_value in pairs:
                if key is None:
                    # A value-only condition matches the value of any pair, or a bare word.
                    if value_pattern.fullmatch(have_value):
                        return True
                elif (
                    have_key is not None
                    and wildcard(key, False).fullmatch(have_key)
                    and value_pattern.fullmatch(have_value)
                ):
                    return True
        return False
    return False  # source-ip and anything newer: not evaluated locally


def sort_rules(rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules in evaluation order: ascending priority, the default rule last."""

    def key(rule: dict[str, Any]) -> tuple[int, int]:
        priority = str(rule.get("Priority", "default"))
        if rule.get("IsDefault") or not priority.isdigit():
            return (1, 0)
        return (0, int(priority))

    return sorted(rules, key=key)


def matching_rule(rules: Sequence[dict[str, Any]], request: RequestInfo) -> dict[str, Any] | None:
    """The first rule (in sorted order) whose conditions all hold; the default has none."""
    for rule in rules:
        if all(condition_matches(c, request) for c in rule.get("Conditions") or []):
            return rule
    return None


def final_action(rule: dict[str, Any]) -> dict[str, Any] | None:
    """The action that answers the request (authenticate-* actions are not run locally)."""
    actions = sorted(rule.get("Actions") or [], key=lambda a: int(a.get("Order") or 0))
    terminal = [a for a in actions if not str(a.get("Type", "")).startswith("authenticate")]
    return terminal[-1] if terminal else None


def forward_groups(action: dict[str, Any]) -> list[tuple[str, int]]:
    """(target group ARN, weight) of a forward action, single or weighted."""
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return [(g["TargetGroupArn"], int(g.get("Weight", 1) or 0)) for g in groups]
    arn = action.get("TargetGroupArn")
    return [(arn, 1)] if arn else []


def forwarded_groups(rules: Sequence[dict[str, Any]]) -> set[str]:
    """Every target group that some forward action of these rules sends traffic to."""
    return {
        arn
        for rule in rules
        for action in rule.get("Actions") or []
        if action.get("Type") == "forward"
        for arn, _ in forward_groups(action)
    }


def choose_weighted(groups: Sequence[tuple[str, int]], draw: float) -> str | None:
    """The group that a uniform draw in [0, 1) falls on, proportionally to the weights."""
    total = sum(w for _, w in groups if w > 0)
    if total <= 0:
        return groups[0][0] if groups else None
    point = draw * total
    for arn, weight in groups:
        if weight <= 0:
            continue
        if point < weight:
            return arn
        point -= weight
    return next(arn for arn, w in reversed(groups) if w > 0)


def redirect(
    config: dict[str, Any], protocol: str, host: str, port: int, path: str, query: str
) -> tuple[int, str, str, int, str, str]:
    """Status, protocol, host, port, path and query of a redirect action's Location."""
    values = {
        "#{protocol}": protocol.lower(),
        "#{host}": host,
        "#{port}": str(port),
        "#{path}": path.lstrip("/"),  # AWS's #{path} has no leading slash
        "#{query}": query,
    }

    def fill(template: str) -> str:
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        return template

    new_protocol = fill(config.get("Protocol") or "#{protocol}").lower()
    new_port_text = fill(config.get("Port") or "#{port}")
    new_port = int(new_port_text) if new_port_text.isdigit() else _DEFAULT_PORTS[new_protocol]
    new_path = fill(config.get("Path") or "/#{path}")
    if not new_path.startswith("/"):
        new_path = "/" + new_path
    status = 302 if str(config.get("StatusCode", "HTTP_301")).endswith("302") else 301
    return (
        status,
        new_protocol,
        fill(config.get("Host") or "#{host}"),
        new_port,
        new_path,
        fill(config.get("Query") if config.get("Query") is not None else "#{query}"),
    )


def location(protocol: str, host: str, port: int, path: str, query: str) -> str:
    """A Location header value; the port is always written, as ALB redirects show it."""
    return f"{protocol}://{host}:{port}{path}" + (f"?{query}" if query else "")


@functools.lru_cache(maxsize=256)
def _matcher_ranges(matcher: str) -> tuple[tuple[int, int], ...]:
    """'200', '200-299' or '200,302' as inclusive ranges."""
    ranges = []
    for part in matcher.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            ranges.append((int(low), int(high) if high.isdigit() else int(low)))
    return tuple(ranges)


def code_matches(matcher: str, status: int) -> bool:
    """True when a health-check status code satisfies the target group's Matcher.HttpCode."""
    return any(low <= status <= high for low, high in _matcher_ranges(matcher or "200"))


def forwarded_for(existing: str | None, client_ip: str) -> str:
    """X-Forwarded-For in AWS's default `append` mode."""
    return f"{existing}, {client_ip}" if existing else client_ip


def new_trace_id(epoch_seconds: float, random_hex: str) -> str:
    """A trace id: version 1, 8 hex digits of epoch seconds, 24 hex digits of randomness."""
    return f"1-{int(epoch_seconds):08x}-{random_hex[:24]:0>24}"


def trace_header(incoming: str | None, epoch_seconds: float, random_hex: str) -> str:
    """X-Amzn-Trace-Id toward the target: a new Root, or Self added before a client's Root."""
    fields = [f.strip() for f in (incoming or "").split(";") if f.strip()]
    if not any(f.startswith("Root=") for f in fields):
        return f"Root={new_trace_id(epoch_seconds, random_hex)}"
    kept = [f for f in fields if not f.startswith("Self=")]
    return ";".join([f"Self={new_trace_id(epoch_seconds, random_hex)}", *kept])


def arn_dimension(arn: str) -> str:
    """The CloudWatch dimension value of an ARN: `app/<name>/<id>` or `targetgroup/<name>/<id>`."""
    resource = arn.split(":", 5)[-1]
    return resource.removeprefix("loadbalancer/")
