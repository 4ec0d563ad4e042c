"""The local ALB's pure logic: rule matching, answers, health state machine, metrics."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from localcloud.elbv2 import health, metrics, rules
from localcloud.elbv2.health import CheckResult, HealthSettings, Target, TargetGroupState
from localcloud.metrics import MetricPublisher, MetricStore
from localcloud.metrics.store import Bucket, MetricId

FAIL_500 = CheckResult(
    False, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"
)


def request(
    path: str = "/",
    method: str = "GET",
    query: str = "",
    host: str = "example.com",
    headers: tuple[tuple[str, str], ...] = (),
) -> rules.RequestInfo:
    return rules.RequestInfo(method=method, path=path, query=query, host=host, headers=headers)


def path_rule(priority: str, *patterns: str, arn: str = "tg-a") -> dict:
    return {
        "Priority": priority,
        "IsDefault": False,
        "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(patterns)}}],
        "Actions": [{"Type": "forward", "TargetGroupArn": arn}],
    }


DEFAULT = {
    "Priority": "default",
    "IsDefault": True,
    "Conditions": [],
    "Actions": [{"Type": "forward", "TargetGroupArn": "tg-default"}],
}


# -- conditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/api/*", "/api/users/7", True),
        ("/api/*", "/api", False),
        ("/api/*", "/API/users", False),  # paths are case-sensitive
        ("/img/?.png", "/img/a.png", True),
        ("/img/?.png", "/img/ab.png", False),
        ("/exact", "/exact", True),
        ("/exact", "/exact/", False),
        ("/a.b", "/axb", False),  # a dot is literal, not a regex wildcard
        ("/star\\*", "/star*", True),  # a backslash makes * literal
        ("/star\\*", "/starlight", False),
    ],
)
def test_path_pattern_wildcards(pattern: str, path: str, matches: bool):
    condition = {"Field": "path-pattern", "PathPatternConfig": {"Values": [pattern]}}
    assert rules.condition_matches(condition, request(path)) is matches


def test_legacy_values_field_is_read_too():
    condition = {"Field": "path-pattern", "Values": ["/old/*"]}
    assert rules.condition_matches(condition, request("/old/page"))
    assert not rules.condition_matches(condition, request("/new/page"))


def test_host_header_is_case_insensitive_with_wildcards():
    condition = {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}
    assert rules.condition_matches(condition, request(host="API.Example.com"))
    assert not rules.condition_matches(condition, request(host="example.org"))


def test_method_condition_is_exact():
    condition = {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}
    assert rules.condition_matches(condition, request(method="POST"))
    assert not rules.condition_matches(condition, request(method="GET"))


def test_http_header_condition_matches_any_value_of_the_named_header():
    condition = {
        "Field": "http-header",
        "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*Mobile*"]},
    }
    mobile = request(headers=(("user-agent", "Foo mobile Bar"),))
    desktop = request(headers=(("User-Agent", "Desktop"),))
    other_header = request(headers=(("X-Agent", "Mobile"),))
    assert rules.condition_matches(condition, mobile)
    assert not rules.condition_matches(condition, desktop)
    assert not rules.condition_matches(condition, other_header)


def test_query_string_condition_with_and_without_key():
    keyed = {
        "Field": "query-string",
        "QueryStringConfig": {"Values": [{"Key": "version", "Value": "v2*"}]},
    }
    value_only = {"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "beta"}]}}
    assert rules.condition_matches(keyed, request(query="a=1&version=V2.1"))
    assert not rules.condition_matches(keyed, request(query="v=v2"))
    assert rules.condition_matches(value_only, request(query="mode=beta"))
    assert rules.condition_matches(value_only, request(query="beta"))
    assert not rules.condition_matches(value_only, request(query=""))


def test_unknown_condition_never_matches():
    condition = {"Field": "source-ip", "SourceIpConfig": {"Values": ["0.0.0.0/0"]}}
    assert not rules.condition_matches(condition, request())


# -- rule order and actions ---------------------------------------------------------------


def test_rules_are_tried_by_priority_then_default():
    ordered = rules.sort_rules(
        [DEFAULT, path_rule("20", "/*", arn="wide"), path_rule("3", "/api/*")]
    )
    assert [r["Priority"] for r in ordered] == ["3", "20", "default"]
    assert rules.matching_rule(ordered, request("/api/x"))["Priority"] == "3"
    assert rules.matching_rule(ordered, request("/other"))["Priority"] == "20"
    assert (
        rules.matching_rule(rules.sort_rules([DEFAULT, path_rule("3", "/api/*")]), request("/x"))
        is DEFAULT
    )


def test_all_conditions_of_a_rule_must_hold():
    rule = path_rule("1", "/api/*")
    rule["Conditions"].append(
        {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}
    )
    assert rules.matching_rule([rule], request("/api/x", method="POST")) is rule
    assert rules.matching_rule([rule], request("/api/x", method="GET")) is None


def test_final_action_skips_authenticate_actions():
    rule = {
        "Actions": [
            {"Type": "forward", "TargetGroupArn": "tg", "Order": 2},
            {"Type": "authenticate-oidc", "Order": 1},
        ]
    }
    assert rules.final_action(rule)["Type"] == "forward"


def test_forward_groups_single_and_weighted():
    assert rules.forward_groups({"Type": "forward", "TargetGroupArn": "a"}) == [("a", 1)]
    weighted = {
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": "a", "Weight": 1},
                {"TargetGroupArn": "b", "Weight": 3},
            ]
        }
    }
    groups = rules.forward_groups(weighted)
    assert groups == [("a", 1), ("b", 3)]
    draws = [rules.choose_weighted(groups, i / 100) for i in range(100)]
    assert draws.count("a") == 25 and draws.count("b") == 75
    assert rules.choose_weighted([("a", 0), ("b", 5)], 0.0) == "b"


def test_forwarded_groups_collects_every_forward_action():
    found = rules.forwarded_groups(
        [path_rule("1", "/a", arn="x"), DEFAULT, {"Actions": [{"Type": "fixed-response"}]}]
    )
    assert found == {"x", "tg-default"}


def test_redirect_defaults_keep_everything():
    status, protocol, host, port, path, query = rules.redirect(
        {"StatusCode": "HTTP_302"}, "HTTP", "example.com", 80, "/a/b", "q=1"
    )
    assert (status, protocol, host, port, path, query) == (
        302,
        "http",
        "example.com",
        80,
        "/a/b",
        "q=1",
    )
    assert rules.location(protocol, host, port, path, query) == "http://example.com:80/a/b?q=1"


def test_redirect_to_https_with_placeholders():
    config = {"Protocol": "HTTPS", "Port": "443", "Path": "/new/#{path}", "StatusCode": "HTTP_301"}
    status, *parts = rules.redirect(config, "HTTP", "example.com", 80, "/old", "")
    assert status == 301
    assert rules.location(*parts) == "https://example.com:443/new/old"


# -- the load balancer's own answers ------------------------------------------------------


def test_error_pages_have_aws_lengths():
    assert len(rules.error_page(503)) == 162
    assert len(rules.error_page(502)) == 122
    assert rules.error_page(504).startswith(b"<html>\r\n<head><title>504 Gateway Time-out</title>")


@pytest.mark.parametrize(
    ("matcher", "status", "ok"),
    [
        ("200", 200, True),
        ("200", 204, False),
        ("200-299", 204, True),
        ("200-299", 302, False),
        ("200,302", 302, True),
        ("200,302", 301, False),
    ],
)
def test_health_check_matcher(matcher: str, status: int, ok: bool):
    assert rules.code_matches(matcher, status) is ok


def test_forwarded_for_appends():
    assert rules.forwarded_for(None, "10.0.0.9") == "10.0.0.9"
    assert rules.forwarded_for("1.2.3.4", "10.0.0.9") == "1.2.3.4, 10.0.0.9"


def test_trace_header_new_and_kept_root():
    created = rules.trace_header(None, 0x5F000000, "ab" * 12)
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", created)
    assert created == "Root=1-5f000000-" + "ab" * 12
    kept = rules.trace_header(
        "Root=1-00000001-000000000000000000000001;Self=old", 0x5F000000, "cd" * 12
    )
    assert kept == "Self=1-5f000000-" + "cd" * 12 + ";Root=1-00000001-000000000000000000000001"


def test_arn_dimensions():
    lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
    tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
    assert rules.arn_dimension(lb) == "app/web/50dc6c495c0c9188"
    assert rules.arn_dimension(tg) == "targetgroup/api/73e2d6bc24d8a067"


# -- health state machine -----------------------------------------------------------------


def test_one_pass_after_registration_is_healthy():
    target = Target("127.0.0.1", 80)
    health.advance(target, health.PASSED, healthy=3, unhealthy=2)
    assert target.state == "healthy" and target.reason is None


def test_initial_failures_then_unhealthy_then_recovery_needs_threshold():
    target = Target("127.0.0.1", 80)
    health.advance(target, FAIL_500, healthy=2, unhealthy=2)
    assert (target.state, target.reason) == ("initial", "Elb.InitialHealthChecking")
    health.advance(target, FAIL_500, healthy=2, unhealthy=2)
    assert (target.state, target.reason) == ("unhealthy", "Target.ResponseCodeMismatch")
    assert target.description == "Health checks failed with these codes: [500]"
    health.advance(target, health.PASSED, healthy=2, unhealthy=2)
    assert target.state == "unhealthy"
    health.advance(target, health.PASSED, healthy=2, unhealthy=2)
    assert target.state == "healthy"


def test_healthy_target_tolerates_fewer_failures_than_the_threshold():
    target = Target("127.0.0.1", 80)
    health.advance(target, health.PASSED, healthy=2, unhealthy=3)
    health.advance(target, health.TIMED_OUT, healthy=2, unhealthy=3)
    health.advance(target, health.TIMED_OUT, healthy=2, unhealthy=3)
    assert target.state == "healthy"
    health.advance(target, health.PASSED, healthy=2, unhealthy=3)
    health.advance(target, health.TIMED_OUT, healthy=2, unhealthy=3)
    assert target.state == "healthy"  # the pass in between reset the count
    health.advance(target, health.TIMED_OUT, healthy=2, unhealthy=3)
    health.advance(target, health.TIMED_OUT, healthy=2, unhealthy=3)
    assert (target.state, target.reason, target.description) == (
        "unhealthy",
        "Target.Timeout",
        "Request timed out",
    )


def used_group(*ports: int, delay: float = 5.0) -> TargetGroupState:
    group = TargetGroupState("tg", "us-east-1", HealthSettings(deregistration_delay=delay))
    group.load_balancers = frozenset({"lb"})
    group.register([("127.0.0.1", p, None) for p in ports], now=0.0)
    return group


def test_unused_group_targets_are_not_in_use():
    group = TargetGroupState("tg", "us-east-1", HealthSettings())
    group.register([("127.0.0.1", 8080, None)], now=0.0)
    [entry] = group.describe(None)
    assert entry["TargetHealth"]["State"] == "unused"
    assert entry["TargetHealth"]["Reason"] == "Target.NotInUse"
    assert group.due(0.0) == []
    group.set_usage(frozenset({"lb"}), now=1.0)
    assert group.describe(None)[0]["TargetHealth"]["State"] == "initial"
    assert len(group.due(1.0)) == 1


def test_choose_round_robins_over_healthy_targets_only():
    group = used_group(1, 2, 3)
    for target in group.targets.values():
        if target.port != 3:
            target.set("healthy")
    chosen = {group.choose().port for _ in range(10)}
    assert chosen == {1, 2}


def test_choose_fails_open_when_no_target_is_healthy():
    group = used_group(1, 2)
    for target in group.targets.values():
        target.set("unhealthy", "Target.Timeout")
    assert {group.choose().port for _ in range(10)} == {1, 2}


def test_draining_targets_get_no_requests_and_are_forgotten_after_the_delay():
    group = used_group(1, 2, delay=5.0)
    group.deregister([("127.0.0.1", 1)], now=10.0)
    assert (
        group.describe([("127.0.0.1", 1)])[0]["TargetHealth"]["Reason"]
        == "Target.DeregistrationInProgress"
    )
    assert {group.choose().port for _ in range(10)} == {2}
    group.due(14.9)
    assert ("127.0.0.1", 1) in group.targets
    group.due(15.0)
    assert ("127.0.0.1", 1) not in group.targets
    group.deregister([("127.0.0.1", 2)], now=20.0)
    assert group.choose() is None  # nothing left to route to: the listener answers 503


def test_describe_unregistered_target_and_health_check_port():
    group = used_group(8080)
    group.settings.port = "9000"
    [registered, stranger] = group.describe([("127.0.0.1", 8080), ("10.0.0.7", 80)])
    assert registered["HealthCheckPort"] == "9000"
    assert stranger["TargetHealth"] == {
        "State": "unused",
        "Reason": "Target.NotRegistered",
        "Description": "Target is not registered to the target group",
    }


def test_checks_are_due_once_per_interval():
    group = used_group(1)
    group.settings.interval = 5.0
    [target] = group.due(0.0)
    assert group.due(1.0) == []  # in flight
    group.record(target, health.PASSED)
    assert group.due(4.9) == []
    assert len(group.due(5.0)) == 1


def test_unreachable_address_times_out_without_waiting():
    assert health.probe(None, "10.0.0.1:80", "/", 5.0, "200") == health.TIMED_OUT


# -- metrics ------------------------------------------------------------------------------


SAMPLES = [
    ("app/a/1", "targetgroup/t/2", 200, "target", 0.01),
    ("app/a/1", "targetgroup/t/2", 503, "target", 0.02),
    ("app/a/1", "targetgroup/t/2", 503, "elb", None),
    ("app/a/1", "", 302, "redirect", None),
]
LB = (("LoadBalancer", "app/a/1"),)
BOTH = (("LoadBalancer", "app/a/1"), ("TargetGroup", "targetgroup/t/2"))


def test_request_data_counts_per_dimension_set():
    counts: Counter[tuple[str, tuple]] = Counter()
    times: dict[tuple[str, tuple], list[float]] = defaultdict(list)
    for sample in SAMPLES:
        for name, dims, value, unit in metrics.request_data(*sample):
            key = (name, tuple(sorted(dims.items())))
            if unit == "Seconds":
                times[key].append(value)
            else:
                assert (unit, value) == ("Count", 1.0)
                counts[key] += 1
    assert counts[("RequestCount", LB)] == 4
    assert counts[("RequestCount", BOTH)] == 3
    assert counts[("HTTPCode_Target_2XX_Count", BOTH)] == 1
    assert counts[("HTTPCode_Target_5XX_Count", LB)] == 1
    assert counts[("HTTPCode_ELB_5XX_Count", LB)] == 1
    assert counts[("HTTPCode_ELB_503_Count", LB)] == 1
    assert ("HTTPCode_ELB_503_Count", BOTH) not in counts
    assert counts[("HTTP_Redirect_Count", LB)] == 1
    assert counts[("HTTPCode_ELB_3XX_Count", LB)] == 1
    assert sorted(times[("TargetResponseTime", LB)]) == [0.01, 0.02]
    assert set(counts) | set(times) == {
        ("RequestCount", LB),
        ("RequestCount", BOTH),
        ("HTTPCode_Target_2XX_Count", LB),
        ("HTTPCode_Target_2XX_Count", BOTH),
        ("HTTPCode_Target_5XX_Count", LB),
        ("HTTPCode_Target_5XX_Count", BOTH),
        ("TargetResponseTime", LB),
        ("TargetResponseTime", BOTH),
        ("HTTPCode_ELB_5XX_Count", LB),
        ("HTTPCode_ELB_503_Count", LB),
        ("HTTPCode_ELB_3XX_Count", LB),
        ("HTTP_Redirect_Count", LB),
    }


def test_requests_reach_the_store_as_sums_and_samples_through_the_publisher():
    store = MetricStore()
    publisher = MetricPublisher(store)
    for sample in SAMPLES:
        metrics.record_request(publisher, *sample)
    publisher.flush()

    def bucket(name: str, dims: tuple) -> Bucket:
        found = store.buckets(MetricId(metrics.NAMESPACE, name, dims), 0, 2**40, 2**40)
        assert len(found) == 1
        return found[0]

    assert bucket("RequestCount", LB).total == 4
    assert bucket("RequestCount", LB).unit == "Count"
    assert bucket("HTTPCode_ELB_503_Count", LB).total == 1
    response_time = bucket("TargetResponseTime", BOTH)
    assert (response_time.unit, response_time.count) == ("Seconds", 2)
    assert response_time.total == pytest.approx(0.03)
