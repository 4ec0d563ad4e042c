"""ALB helpers without a cloud: names, validation, get-or-create decisions, metrics, teardown."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import cleanup, elbv2
from helpers.elbv2 import teardown
from helpers.waiting import WaitTimeout

ACCOUNT = "123456789012"  # the local cloud's fake account: never a real one in tests
ELB = f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}"
LB_ARN = f"{ELB}:loadbalancer/app/scd-unit-18-web/50dc6c"
TG_ARN = f"{ELB}:targetgroup/scd-unit-18-web/73e2d6"
OTHER_TG = f"{ELB}:targetgroup/scd-unit-18-old/1a2b3c"
LISTENER_ARN = f"{ELB}:listener/app/scd-unit-18-web/50dc6c/f2"
TAGS = [
    {"Key": "course", "Value": "serverless-containers-databases"},
    {"Key": "pattern", "Value": "18"},
    {"Key": "run_id", "Value": "unit"},
]


def _target_group(**changes) -> dict:
    group = {
        "TargetGroupArn": TG_ARN,
        "TargetGroupName": "scd-unit-18-web",
        "Protocol": "HTTP",
        "Port": 8080,
        "VpcId": "vpc-1",
        "TargetType": "ip",
        "HealthCheckEnabled": True,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": "/health",
        "HealthCheckIntervalSeconds": 10,
        "HealthCheckTimeoutSeconds": 5,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2,
        "Matcher": {"HttpCode": "200"},
    }
    group.update(changes)
    return group


def _attributes(delay: str) -> dict:
    return {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": delay}]}


# --- names and validation ------------------------------------------------------------------


def test_elb_names_fit_32_characters_or_fail_saying_how_much_room_is_left(offline_lab):
    assert elbv2.elb_name(offline_lab, "18", "web") == "scd-unit-18-web"
    with pytest.raises(ValueError, match=r"too long.*'scd-unit-18-' leaves 20"):
        elbv2.elb_name(offline_lab, "18", "a-much-too-long-name-here", "target group")
    with pytest.raises(ValueError, match="letters, digits and single hyphens"):
        elbv2.elb_name(offline_lab, "18", "web_1")
    with pytest.raises(ValueError, match="letters, digits and single hyphens"):
        elbv2.elb_name(offline_lab, "18", "web-")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"interval_s": 4}, r"interval_s must be between 5 and 300 seconds, not 4"),
        ({"interval_s": 301}, r"interval_s must be between 5 and 300"),
        ({"timeout_s": 1}, r"timeout_s must be between 2 and 120"),
        ({"interval_s": 10, "timeout_s": 10}, r"timeout_s \(10\) must be less than interval_s"),
        ({"healthy_threshold": 1}, r"healthy_threshold must be between 2 and 10"),
        ({"unhealthy_threshold": 11}, r"unhealthy_threshold must be between 2 and 10"),
        ({"deregistration_delay_s": 3601}, r"deregistration_delay_s must be between 0 and 3600"),
        ({"health_check_path": "health"}, r"health_check_path must start with '/'"),
        ({"matcher": "ok"}, r"matcher 'ok'"),
        ({"port": 0}, r"port must be between 1 and 65535"),
        ({"interval_s": 10.5}, r"interval_s must be a whole number"),
    ],
)
def test_target_group_settings_are_checked_before_any_call(offline_lab, stubber, settings, message):
    stub = stubber("elbv2")  # no responses queued: any AWS call would fail the test
    arguments = {"vpc_id": "vpc-1", "port": 8080, **settings}
    with pytest.raises(ValueError, match=message):
        elbv2.ensure_target_group(offline_lab, "18", "web", **arguments)
    stub.assert_no_pending_responses()


def test_load_balancer_needs_two_subnets_and_a_group(offline_lab):
    with pytest.raises(ValueError, match="at least two subnets"):
        elbv2.ensure_load_balancer(
            offline_lab, "18", "web", subnets=["subnet-1"], security_groups=["sg"]
        )
    with pytest.raises(ValueError, match="at least two subnets"):
        elbv2.ensure_load_balancer(
            offline_lab, "18", "web", subnets="subnet-1", security_groups=["sg"]
        )
    with pytest.raises(ValueError, match="security_groups"):
        elbv2.ensure_load_balancer(
            offline_lab, "18", "web", subnets=["s1", "s2"], security_groups=[]
        )
    with pytest.raises(ValueError, match="idle_timeout_s must be between 1 and 4000"):
        elbv2.ensure_load_balancer(
            offline_lab, "18", "web", subnets=["s1", "s2"], security_groups=["sg"], idle_timeout_s=0
        )


# --- get-or-create decisions ---------------------------------------------------------------


def test_new_load_balancer_is_public_tagged_and_waited_for(offline_lab, stubber):
    stub = stubber("elbv2")
    missing = {"Code": "LoadBalancerNotFound", "Message": "not found"}
    stub.add_client_error("describe_load_balancers", missing["Code"], missing["Message"])
    provisioning = {
        "LoadBalancerArn": LB_ARN,
        "LoadBalancerName": "scd-unit-18-web",
        "Scheme": "internet-facing",
        "Type": "application",
        "State": {"Code": "provisioning"},
    }
    stub.add_response(
        "create_load_balancer",
        {"LoadBalancers": [provisioning]},
        {
            "Name": "scd-unit-18-web",
            "Subnets": ["subnet-a", "subnet-b"],
            "SecurityGroups": ["sg-alb"],
            "Scheme": "internet-facing",
            "Type": "application",
            "IpAddressType": "ipv4",
            "Tags": TAGS,
        },
    )
    stub.add_response(
        "describe_load_balancer_attributes",
        {"Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]},
        {"LoadBalancerArn": LB_ARN},
    )
    stub.add_response(
        "modify_load_balancer_attributes",
        {},
        {
            "LoadBalancerArn": LB_ARN,
            "Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "120"}],
        },
    )
    stub.add_response("describe_load_balancers", {"LoadBalancers": [provisioning]})
    active = {**provisioning, "State": {"Code": "active"}}
    stub.add_response("describe_load_balancers", {"LoadBalancers": [active]})
    balancer = elbv2.ensure_load_balancer(
        offline_lab,
        "18",
        "web",
        subnets=["subnet-b", "subnet-a", "subnet-b"],
        security_groups=["sg-alb"],
        idle_timeout_s=120,
    )
    assert balancer["State"]["Code"] == "active"
    stub.assert_no_pending_responses()
    assert [e["kind"] for e in offline_lab.ledger.entries()] == ["load balancer"]


def test_target_group_rerun_changes_only_what_differs(offline_lab, stubber):
    stub = stubber("elbv2")
    names = {"Names": ["scd-unit-18-web"]}
    # Same settings: two reads, no writes.
    stub.add_response("describe_target_groups", {"TargetGroups": [_target_group()]}, names)
    stub.add_response("describe_target_group_attributes", _attributes("30"))
    assert elbv2.ensure_target_group(offline_lab, "18", "web", vpc_id="vpc-1", port=8080) == (
        _target_group()
    )
    stub.assert_no_pending_responses()
    # Another interval and delay: exactly those two are modified.
    stub.add_response("describe_target_groups", {"TargetGroups": [_target_group()]}, names)
    changed = _target_group(HealthCheckIntervalSeconds=30)
    stub.add_response(
        "modify_target_group",
        {"TargetGroups": [changed]},
        {"TargetGroupArn": TG_ARN, "HealthCheckIntervalSeconds": 30},
    )
    stub.add_response("describe_target_group_attributes", _attributes("30"))
    stub.add_response(
        "modify_target_group_attributes",
        {},
        {"TargetGroupArn": TG_ARN, **_attributes("0")},
    )
    group = elbv2.ensure_target_group(
        offline_lab, "18", "web", vpc_id="vpc-1", port=8080, interval_s=30, deregistration_delay_s=0
    )
    assert group["HealthCheckIntervalSeconds"] == 30
    stub.assert_no_pending_responses()


def test_target_group_with_another_port_is_refused_not_silently_kept(offline_lab, stubber):
    stub = stubber("elbv2")
    stub.add_response("describe_target_groups", {"TargetGroups": [_target_group(Port=80)]})
    with pytest.raises(ValueError, match=r"\{'Port': 80\}.*cannot change.*pattern='18'"):
        elbv2.ensure_target_group(offline_lab, "18", "web", vpc_id="vpc-1", port=8080)


def test_listener_is_reused_redirected_or_created(offline_lab, stubber):
    stub = stubber("elbv2")
    forward_old = {
        "ListenerArn": LISTENER_ARN,
        "Port": 80,
        "DefaultActions": [
            {
                "Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": OTHER_TG, "Weight": 1}]},
            }
        ],
    }
    forward_new = {**forward_old, "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG_ARN}]}
    by_lb = {"LoadBalancerArn": LB_ARN}
    # 1. Already forwarding to the target group: nothing to do.
    stub.add_response("describe_listeners", {"Listeners": [forward_new]}, by_lb)
    assert elbv2.ensure_listener(offline_lab, LB_ARN, TG_ARN) == forward_new
    # 2. Port 80 forwards elsewhere: its default action is replaced, not a second listener.
    stub.add_response("describe_listeners", {"Listeners": [forward_old]}, by_lb)
    stub.add_response(
        "modify_listener",
        {"Listeners": [forward_new]},
        {
            "ListenerArn": LISTENER_ARN,
            "Protocol": "HTTP",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG_ARN}],
        },
    )
    assert elbv2.ensure_listener(offline_lab, LB_ARN, TG_ARN) == forward_new
    # 3. Nothing on port 8080: a tagged listener is created.
    stub.add_response("describe_listeners", {"Listeners": [forward_old]}, by_lb)
    stub.add_response(
        "create_listener",
        {"Listeners": [{**forward_new, "Port": 8080}]},
        {
            "LoadBalancerArn": LB_ARN,
            "Protocol": "HTTP",
            "Port": 8080,
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG_ARN}],
            "Tags": TAGS,
        },
    )
    assert elbv2.ensure_listener(offline_lab, LB_ARN, TG_ARN, port=8080)["Port"] == 8080
    stub.assert_no_pending_responses()
    with pytest.raises(ValueError, match="not an Application Load Balancer ARN"):
        elbv2.ensure_listener(offline_lab, TG_ARN, TG_ARN)


def test_alb_security_group_keeps_exactly_one_public_port(offline_lab, stubber):
    stub = stubber("ec2")
    group = {
        "GroupId": "sg-alb",
        "GroupName": "scd-unit-18-alb-sg",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 80,
                "ToPort": 80,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
            # A rule admitting another group is not a public rule: it stays.
            {
                "IpProtocol": "tcp",
                "FromPort": 80,
                "ToPort": 80,
                "UserIdGroupPairs": [{"GroupId": "sg-x"}],
            },
        ],
    }
    stub.add_response("describe_security_groups", {"SecurityGroups": [group]})
    assert elbv2.ensure_alb_security_group(offline_lab, "18", "vpc-1") == "sg-alb"  # 80 is there
    stub.add_response("describe_security_groups", {"SecurityGroups": [group]})
    public = [{"CidrIp": "0.0.0.0/0"}]
    stub.add_response(
        "revoke_security_group_ingress",
        {},
        {
            "GroupId": "sg-alb",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": public}
            ],
        },
    )
    stub.add_response(
        "authorize_security_group_ingress",
        {},
        {
            "GroupId": "sg-alb",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": public}
            ],
        },
    )
    elbv2.ensure_alb_security_group(offline_lab, "18", "vpc-1", port=8080)
    stub.assert_no_pending_responses()


def test_allow_from_security_group_tolerates_only_duplicates(offline_lab, stubber):
    stub = stubber("ec2")
    expected = {
        "GroupId": "sg-task",
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "UserIdGroupPairs": [{"GroupId": "sg-alb"}],
            }
        ],
    }
    stub.add_client_error(
        "authorize_security_group_ingress", "InvalidPermission.Duplicate", expected_params=expected
    )
    elbv2.allow_from_security_group(offline_lab, "sg-task", "sg-alb", 8080)
    stub.add_client_error("authorize_security_group_ingress", "InvalidGroup.NotFound")
    with pytest.raises(Exception, match="InvalidGroup.NotFound"):
        elbv2.allow_from_security_group(offline_lab, "sg-task", "sg-alb", 8080)
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        elbv2.allow_from_security_group(offline_lab, "sg-task", "sg-alb", 70000)


# --- health and metrics --------------------------------------------------------------------


class _Health:
    """A fake elbv2 client whose targets never become healthy."""

    def describe_target_health(self, TargetGroupArn: str) -> dict:
        return {
            "TargetHealthDescriptions": [
                {
                    "Target": {"Id": "10.0.1.9", "Port": 8080},
                    "TargetHealth": {"State": "healthy"},
                },
                {
                    "Target": {"Id": "10.0.0.5", "Port": 8080},
                    "TargetHealth": {
                        "State": "unhealthy",
                        "Reason": "Target.Timeout",
                        "Description": "Request timed out",
                    },
                },
            ]
        }


def test_target_health_table_and_a_timeout_that_shows_the_reasons(offline_lab):
    offline_lab._clients["elbv2"] = _Health()
    frame = elbv2.target_health(offline_lab, TG_ARN)
    assert list(frame.columns) == ["target", "port", "state", "reason", "description"]
    assert frame.to_dict("records")[0] == {
        "target": "10.0.0.5",
        "port": 8080,
        "state": "unhealthy",
        "reason": "Target.Timeout",
        "description": "Request timed out",
    }
    assert len(elbv2.wait_for_healthy_targets(offline_lab, TG_ARN, 1, timeout=5)) == 2
    with pytest.raises(WaitTimeout, match=r"(?s)security group.*10\.0\.0\.5.*Target\.Timeout"):
        elbv2.wait_for_healthy_targets(offline_lab, TG_ARN, 2, timeout=0.6)


def test_metric_dimensions_are_arn_suffixes():
    dimensions = elbv2.metric_dimensions({"LoadBalancerArn": LB_ARN}, {"TargetGroupArn": TG_ARN})
    assert dimensions == {
        "LoadBalancer": "app/scd-unit-18-web/50dc6c",
        "TargetGroup": "targetgroup/scd-unit-18-web/73e2d6",
    }
    assert elbv2.metric_dimensions({"LoadBalancerArn": LB_ARN}) == {
        "LoadBalancer": "app/scd-unit-18-web/50dc6c"
    }
    with pytest.raises(ValueError, match="Application Load Balancer"):
        elbv2.metric_dimensions({"LoadBalancerArn": LB_ARN.replace("/app/", "/net/")})
    with pytest.raises(ValueError, match="target_group"):
        elbv2.metric_dimensions({"LoadBalancerArn": LB_ARN}, {"TargetGroupArn": LB_ARN})


def test_latency_frame_asks_for_percentiles_and_converts_seconds_to_ms(offline_lab, stubber):
    stub = stubber("cloudwatch")
    end = dt.datetime(2026, 1, 1, 12, 10, tzinfo=dt.UTC)
    start = end - dt.timedelta(minutes=9, seconds=30)  # rounded up to 10 minutes
    dims = [
        {"Name": "LoadBalancer", "Value": "app/scd-unit-18-web/50dc6c"},
        {"Name": "TargetGroup", "Value": "targetgroup/scd-unit-18-web/73e2d6"},
    ]

    def query(i: int, name: str, stat: str, label: str) -> dict:
        metric = {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": dims}
        return {
            "Id": f"m{i}",
            "Label": label,
            "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat},
        }

    t = [end - dt.timedelta(minutes=2), end - dt.timedelta(minutes=1)]
    results = [
        {"Id": "m0", "Label": "p50_ms", "Timestamps": t, "Values": [0.010, 0.012]},
        {"Id": "m1", "Label": "p90_ms", "Timestamps": t, "Values": [0.020, 0.025]},
        {"Id": "m2", "Label": "p99_ms", "Timestamps": t, "Values": [0.100, 0.150]},
        {"Id": "m3", "Label": "requests", "Timestamps": t, "Values": [600.0, 540.0]},
    ]
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": results},
        {
            "MetricDataQueries": [
                query(0, "TargetResponseTime", "p50", "p50_ms"),
                query(1, "TargetResponseTime", "p90", "p90_ms"),
                query(2, "TargetResponseTime", "p99", "p99_ms"),
                query(3, "RequestCount", "Sum", "requests"),
            ],
            "StartTime": end - dt.timedelta(minutes=10),
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        },
    )
    frame = elbv2.alb_latency_frame(
        offline_lab, {"LoadBalancerArn": LB_ARN}, {"TargetGroupArn": TG_ARN}, start, end
    )
    assert list(frame.columns) == ["p50_ms", "p90_ms", "p99_ms", "requests"]
    assert frame["p99_ms"].tolist() == pytest.approx([100.0, 150.0])
    assert frame["requests"].tolist() == [600.0, 540.0]
    with pytest.raises(ValueError, match="multiple of 60"):
        elbv2.alb_latency_frame(
            offline_lab, {"LoadBalancerArn": LB_ARN}, None, start, end, period=30
        )


# --- teardown ------------------------------------------------------------------------------


def test_load_balancer_delete_waits_for_it_and_its_network_interfaces(offline_lab, stubber):
    elb, ec2 = stubber("elbv2"), stubber("ec2")
    resource = cleanup.Resource("load balancer", "scd-unit-18-web", "18", "unit", {"arn": LB_ARN})
    elb.add_response("delete_load_balancer", {}, {"LoadBalancerArn": LB_ARN})
    elb.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": LB_ARN}]})
    elb.add_client_error("describe_load_balancers", "LoadBalancerNotFound")
    by_description = {
        "Filters": [{"Name": "description", "Values": ["ELB app/scd-unit-18-web/50dc6c"]}]
    }
    ec2.add_response(
        "describe_network_interfaces",
        {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1"}]},
        by_description,
    )
    ec2.add_response("describe_network_interfaces", {"NetworkInterfaces": []}, by_description)
    teardown._delete_load_balancer(offline_lab, resource)
    elb.assert_no_pending_responses()
    ec2.assert_no_pending_responses()


def test_alb_group_delete_frees_course_references_then_retries_while_in_use(offline_lab, stubber):
    ec2 = stubber("ec2")
    referencing = [
        {
            "GroupId": "sg-task",
            "GroupName": "scd-unit-18-task-sg",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupId": "sg-alb"}, {"GroupId": "sg-other"}],
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                },
            ],
        },
        # A student's own group is left alone even if it admits the ALB's group.
        {
            "GroupId": "sg-mine",
            "GroupName": "my-app",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "UserIdGroupPairs": [{"GroupId": "sg-alb"}],
                }
            ],
        },
    ]
    ec2.add_response(
        "describe_security_groups",
        {"SecurityGroups": referencing},
        {"Filters": [{"Name": "ip-permission.group-id", "Values": ["sg-alb"]}]},
    )
    ec2.add_response(
        "revoke_security_group_ingress",
        {},
        {
            "GroupId": "sg-task",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupId": "sg-alb"}],
                }
            ],
        },
    )
    ec2.add_client_error("delete_security_group", "DependencyViolation")
    ec2.add_response("delete_security_group", {}, {"GroupId": "sg-alb"})
    resource = cleanup.Resource("alb security group", "sg-alb", "18", "unit")
    teardown._delete_security_group(offline_lab, resource)
    ec2.assert_no_pending_responses()


def test_target_group_delete_retries_while_in_use_and_kinds_are_ordered(offline_lab, stubber):
    elb = stubber("elbv2")
    elb.add_client_error("delete_target_group", "ResourceInUse")
    elb.add_response("delete_target_group", {}, {"TargetGroupArn": TG_ARN})
    resource = cleanup.Resource("target group", "scd-unit-18-web", "18", "unit", {"arn": TG_ARN})
    teardown._delete_target_group(offline_lab, resource)
    elb.assert_no_pending_responses()
    after = {kind.name: kind.after for kind in teardown.RESOURCE_KINDS}
    assert after["load balancer"] == ("http api", "ecs service")
    assert "load balancer" in after["target group"]
    assert after["alb security group"] == ("load balancer",)
