"""What REST APIs and HTTP APIs share: request metrics by flavour, and the configuration cache."""

from __future__ import annotations

from localcloud.apigateway.metrics import REST_API
from localcloud.apigatewayv2.listeners import ConfigCache
from localcloud.apigatewayv2.metrics import HTTP_API


def test_each_flavour_names_its_metrics_and_dimension_as_aws_does():
    rest = REST_API.data("shop", "prod", 403, 2.0, None)
    http = HTTP_API.data("a1b2c3", "prod", 403, 2.0, None)
    assert [(name, dims, value) for name, dims, value, _ in rest] == [
        ("Count", {"ApiName": "shop"}, 1),
        ("4XXError", {"ApiName": "shop"}, 1),
        ("5XXError", {"ApiName": "shop"}, 0),
        ("Latency", {"ApiName": "shop"}, 2.0),
        ("Count", {"ApiName": "shop", "Stage": "prod"}, 1),
        ("4XXError", {"ApiName": "shop", "Stage": "prod"}, 1),
        ("5XXError", {"ApiName": "shop", "Stage": "prod"}, 0),
        ("Latency", {"ApiName": "shop", "Stage": "prod"}, 2.0),
    ]
    assert [name for name, *_ in http[:4]] == ["Count", "4xx", "5xx", "Latency"]
    assert {frozenset(dims) for _, dims, _, _ in http} == {
        frozenset({"ApiId"}),
        frozenset({"ApiId", "Stage"}),
    }


def test_a_read_that_straddles_a_change_is_not_cached():
    cache: ConfigCache[str] = ConfigCache()
    cached, generation = cache.lookup("a1")
    assert cached is None
    cache.invalidate("b2")  # a write, while a1's configuration was being read
    cache.store("a1", "stale", generation)
    assert cache.lookup("a1")[0] is None
    _, generation = cache.lookup("a1")
    cache.store("a1", "fresh", generation)
    assert cache.lookup("a1")[0] == "fresh"
    cache.invalidate("a1")
    assert cache.lookup("a1")[0] is None
