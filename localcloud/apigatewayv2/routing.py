"""HTTP API stage and route selection, and HTTP_PROXY URL building (pure functions).

AWS's rules (API Gateway developer guide, "Routing API requests" for HTTP APIs): a request
whose first path segment names a stage goes to that stage, anything else to `$default`, and
without a `$default` stage the answer is `{"message":"Not Found"}`. Within the stage the most
specific route wins: a full match of route and method, then a route with a greedy path
variable (`{proxy+}`), then the `$default` route. `ANY` matches the methods that no route
names for that path. Path parameter values reach the integration URL-decoded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

DEFAULT = "$default"
ANY = "ANY"
VARIABLE = re.compile(r"^\{([^{}+]+)(\+?)\}$")
_PLACEHOLDER = re.compile(r"\{([^{}+]+)\+?\}")


@dataclass(frozen=True)
class Route:
    """One route: method (None for `$default`), path template segments and its target."""

    route_key: str
    method: str | None
    segments: tuple[str, ...]
    target: str | None = None
    greedy: bool = field(default=False, compare=False)

    @property
    def path(self) -> str:
        """The route's resource path, e.g. `/items/{id}` (empty for `$default`)."""
        return "/" + "/".join(self.segments) if self.method is not None else ""


@dataclass(frozen=True)
class RouteMatch:
    """The selected route and the request's path parameters (URL-decoded)."""

    route: Route
    path_parameters: dict[str, str]


def parse_route_key(route_key: str, target: str | None = None) -> Route:
    """A Route from a route key like `GET /items/{id}`, `ANY /{proxy+}` or `$default`."""
    if route_key == DEFAULT:
        return Route(route_key, None, (), target)
    method, _, path = route_key.partition(" ")
    if not path.startswith("/"):
        raise ValueError(f"not an HTTP API route key: {route_key!r}")
    segments = tuple(path[1:].split("/")) if path != "/" else ()
    greedy = bool(segments) and _is_greedy(segments[-1])
    return Route(route_key, method.upper(), segments, target, greedy)


def path_segments(path: str) -> list[str]:
    """A request path's raw segments; `/` has none, a trailing slash leaves an empty one."""
    return path[1:].split("/") if path not in ("", "/") else []


def select_stage(stage_names: set[str], raw_path: str) -> tuple[str, str] | None:
    """(stage, path within the stage) for a request path, or None when no stage serves it."""
    segments = path_segments(raw_path)
    if segments and segments[0] != DEFAULT and unquote(segments[0]) in stage_names:
        rest = "/" + "/".join(segments[1:])
        return unquote(segments[0]), rest
    if DEFAULT in stage_names:
        return DEFAULT, raw_path or "/"
    return None


def select_route(routes: list[Route], method: str, path: str) -> RouteMatch | None:
    """The most specific route for a method and a path within the stage, or None."""
    segments = path_segments(path)
    best: tuple[tuple, RouteMatch] | None = None
    fallback: Route | None = None
    for route in routes:
        if route.method is None:
            fallback = route
            continue
        if route.method not in (method, ANY):
            continue
        parameters = _match(route, segments)
        if parameters is None:
            continue
        rank = _specificity(route)
        if best is None or rank > best[0]:
            best = (rank, RouteMatch(route, parameters))
    if best is not None:
        return best[1]
    return RouteMatch(fallback, {}) if fallback is not None else None


def _is_greedy(segment: str) -> bool:
    """True for a `{name+}` template segment."""
    found = VARIABLE.match(segment)
    return bool(found and found.group(2))


def _match(route: Route, segments: list[str]) -> dict[str, str] | None:
    """Path parameters if the route's template matches the segments, else None."""
    return match_template(route.segments, route.greedy, segments)


def match_template(
    template: Sequence[str], greedy: bool, segments: Sequence[str]
) -> dict[str, str] | None:
    """Path parameters if a path template (`items`, `{id}`, a last `{proxy+}` when greedy)
    matches a request's raw segments, else None; REST API resources match the same way."""
    fixed = template[:-1] if greedy else template
    if greedy:
        # A greedy variable needs at least one non-empty segment of its own: `/{proxy+}`
        # does not match `/` (an HTTP API sends that to `$default`, a REST API to `/`).
        if len(segments) <= len(fixed) or not "/".join(segments[len(fixed) :]):
            return None
    elif len(segments) != len(template):
        return None
    parameters: dict[str, str] = {}
    for pattern, raw in zip(fixed, segments, strict=False):
        variable = VARIABLE.match(pattern)
        if variable is None:
            if unquote(raw) != pattern:
                return None
        elif not raw:
            return None  # a path variable never matches an empty segment
        else:
            parameters[variable.group(1)] = unquote(raw)
    if greedy:
        name = VARIABLE.match(template[-1]).group(1)  # type: ignore[union-attr]
        parameters[name] = unquote("/".join(segments[len(fixed) :]))
    return parameters


def _specificity(route: Route) -> tuple:
    """Sort key, higher wins: no greedy variable, then longer literal-first paths, then a
    named method over ANY (AWS: a full match beats a greedy match; ANY only catches the
    methods no route names)."""
    fixed = route.segments[:-1] if route.greedy else route.segments
    literals = tuple(0 if VARIABLE.match(s) else 1 for s in fixed)
    return (not route.greedy, len(fixed), literals, route.method != ANY)


def integration_url(uri: str, match: RouteMatch, raw_path: str, raw_query: str) -> str:
    """The backend URL of an HTTP_PROXY integration for one request.

    `{name}` and `{name+}` in the URI take the route's path parameters (re-encoded; a greedy
    value keeps its slashes). For the `$default` route, whose URI has no variables, the full
    request path (with a named stage's prefix, as AWS documents for private integrations) is
    appended: `raw_path` is the path as the client sent it. The query string is passed on.
    """
    if match.route.method is None and not _PLACEHOLDER.search(uri):
        scheme_host, path, query = _split_url(uri)
        url = scheme_host + path.rstrip("/") + (raw_path or "/")
        url += "?" + query if query else ""
        return _with_query(url, raw_query)
    last = match.route.segments[-1] if match.route.greedy else ""
    return filled_uri(uri, match.path_parameters, last[1:-2] if last else None, raw_query)


def filled_uri(
    uri: str, path_parameters: dict[str, str], greedy: str | None, raw_query: str
) -> str:
    """The URI with `{name}` / `{name+}` replaced by the path parameters (re-encoded; the
    greedy one keeps its slashes) and the request's query string appended; REST APIs'
    HTTP_PROXY integrations fill theirs the same way."""

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in path_parameters:
            return found.group(0)
        return quote(path_parameters[name], safe="/" if name == greedy else "")

    return _with_query(_PLACEHOLDER.sub(value, uri), raw_query)


def _with_query(url: str, raw_query: str) -> str:
    """The URL with the request's query string added to its own."""
    return url + ("&" if "?" in url else "?") + raw_query if raw_query else url


def _split_url(url: str) -> tuple[str, str, str]:
    """(scheme://host[:port], path, query) of an absolute URL."""
    scheme, _, rest = url.partition("://")
    host, slash, path_query = rest.partition("/")
    path, _, query = (slash + path_query).partition("?")
    return f"{scheme}://{host}", path, query
