"""RDS Proxy helpers without a cloud: proxy creation, target health, IAM, VPC teardown."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.stub import ANY

from helpers import cleanup, iam, lambda_, rds_proxy

PROXY_ARN = "arn:aws:rds:eu-west-1:123456789012:db-proxy:prx-0123456789abcdef0"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-1-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/scd-unit-20-proxy-role"


def _proxy(status: str) -> dict:
    return {
        "DBProxyName": "scd-unit-20-proxy",
        "DBProxyArn": PROXY_ARN,
        "Status": status,
        "EngineFamily": "MYSQL",
        "Endpoint": "scd-unit-20-proxy.proxy-abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "RequireTLS": True,
        "Auth": [{"AuthScheme": "SECRETS", "SecretArn": SECRET, "IAMAuth": "REQUIRED"}],
    }


def _target(kind: str, state: str, **extra) -> dict:
    return {
        "Type": kind,
        "TargetHealth": {"State": state, **extra},
        "Port": 3306,
        **(
            {"RdsResourceId": "scd-unit-19-aurora-writer", "Role": "READ_WRITE"}
            if kind == "RDS_INSTANCE"
            else {"TrackedClusterId": "scd-unit-19-aurora"}
        ),
    }


NETWORK = rds_proxy.ProxyNetwork(
    vpc_id="vpc-1",
    subnet_ids=["subnet-a", "subnet-b"],
    client_group_id="sg-clients",
    proxy_group_id="sg-proxy",
    database_group_ids=["sg-db"],
)


@pytest.mark.parametrize(
    ("acu", "connections"), [(1, 90), (3.5, 90), (4, 135), (8, 1000), (256, 5000)]
)
def test_max_connections_follow_awss_table(acu, connections):
    assert rds_proxy.max_connections(acu) == connections


def test_ensure_proxy_creates_a_tls_and_iam_only_proxy_and_waits(offline_lab, stubber):
    rds = stubber("rds")
    not_found = "DBProxyNotFoundFault"
    rds.add_client_error(
        "describe_db_proxies", not_found, expected_params={"DBProxyName": "scd-unit-20-proxy"}
    )
    rds.add_response(
        "create_db_proxy",
        {"DBProxy": _proxy("creating")},
        expected_params={
            "DBProxyName": "scd-unit-20-proxy",
            "EngineFamily": "MYSQL",
            "Auth": [
                {
                    "AuthScheme": "SECRETS",
                    "SecretArn": SECRET,
                    "IAMAuth": "REQUIRED",
                    "ClientPasswordAuthType": "MYSQL_NATIVE_PASSWORD",
                }
            ],
            "RoleArn": ROLE,
            "VpcSubnetIds": ["subnet-a", "subnet-b"],
            "VpcSecurityGroupIds": ["sg-proxy"],
            "RequireTLS": True,
            "IdleClientTimeout": 1800,
            "Tags": ANY,
        },
    )
    rds.add_response("describe_db_proxies", {"DBProxies": [_proxy("creating")]})
    rds.add_response("describe_db_proxies", {"DBProxies": [_proxy("available")]})

    proxy = rds_proxy.ensure_proxy(
        offline_lab, "20", "proxy", secret_arn=SECRET, role_arn=ROLE, network=NETWORK
    )
    assert proxy.resource_id == "prx-0123456789abcdef0"
    assert (proxy.status, proxy.port, proxy.require_tls, proxy.iam_auth) == (
        "available",
        3306,
        True,
        "REQUIRED",
    )
    rds.assert_no_pending_responses()


def test_targets_are_awaited_and_an_unavailable_one_says_why(offline_lab, stubber):
    rds = stubber("rds")
    proxy = rds_proxy.proxy_info_from(_proxy("available"))
    rds.add_response("describe_db_proxy_targets", {"Targets": []})
    rds.add_response(
        "register_db_proxy_targets",
        {"DBProxyTargets": []},
        expected_params={
            "DBProxyName": proxy.name,
            "TargetGroupName": "default",
            "DBClusterIdentifiers": ["scd-unit-19-aurora"],
        },
    )
    rds.add_response(
        "describe_db_proxy_targets",
        {
            "Targets": [
                _target("TRACKED_CLUSTER", "REGISTERING"),
                _target("RDS_INSTANCE", "REGISTERING"),
            ]
        },
    )
    rds.add_response(
        "describe_db_proxy_targets",
        {
            "Targets": [
                _target("TRACKED_CLUSTER", "AVAILABLE"),
                _target("RDS_INSTANCE", "AVAILABLE"),
            ]
        },
    )
    frame = rds_proxy.ensure_targets(offline_lab, proxy, "scd-unit-19-aurora")
    assert list(frame["health"]) == ["AVAILABLE", "AVAILABLE"]
    assert list(frame["type"]) == ["TRACKED_CLUSTER", "RDS_INSTANCE"]

    broken = _target(
        "RDS_INSTANCE",
        "UNAVAILABLE",
        Reason="AUTH_FAILURE",
        Description="Proxy does not have any registered credentials",
    )
    rds.add_response("describe_db_proxy_targets", {"Targets": [broken]})
    rds.add_response("describe_db_proxy_targets", {"Targets": [broken]})
    with pytest.raises(RuntimeError, match="AUTH_FAILURE: Proxy does not have any registered"):
        rds_proxy.ensure_targets(offline_lab, proxy, "scd-unit-19-aurora")


def test_permissions_are_scoped_to_one_secret_one_proxy_user_and_these_subnets(offline_lab):
    proxy = rds_proxy.proxy_info_from(_proxy("available"))
    assert rds_proxy.connect_statement(offline_lab, proxy, "admin")["Resource"] == (
        "arn:aws:rds-db:eu-west-1:123456789012:dbuser:prx-0123456789abcdef0/admin"
    )
    (read,) = iam.secret_read_statements(SECRET)
    assert (read["Action"], read["Resource"]) == ("secretsmanager:GetSecretValue", SECRET)
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234"
    decrypt = iam.secret_read_statements(SECRET, key)[1]
    assert decrypt["Resource"] == key
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.eu-west-1.amazonaws.com"
    )
    statements = iam.vpc_access_statements(offline_lab, ["subnet-a"], ["sg-clients"])
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == [
        ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    ]
    create = next(s for s in statements if s["Action"] == "ec2:CreateNetworkInterface")
    assert "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-a" in create["Resource"]
    assert "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-clients" in create["Resource"]


def test_pool_settings_are_checked_before_any_call(offline_lab):
    proxy = rds_proxy.proxy_info_from(_proxy("available"))
    with pytest.raises(ValueError, match="max_idle_connections_percent"):
        rds_proxy.configure_pool(
            offline_lab, proxy, max_connections_percent=20, max_idle_connections_percent=30
        )
    with pytest.raises(ValueError, match="borrow_timeout_s"):
        rds_proxy.configure_pool(offline_lab, proxy, borrow_timeout_s=301)


def test_teardown_detaches_a_vpc_function_before_deleting_it(offline_lab, stubber):
    client = stubber("lambda")
    name = "scd-unit-20-fn"
    attached = {
        "FunctionName": name,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "VpcConfig": {
            "SubnetIds": ["subnet-a"],
            "SecurityGroupIds": ["sg-clients"],
            "VpcId": "vpc-1",
        },
    }
    client.add_response("get_function_configuration", attached, {"FunctionName": name})
    client.add_response(
        "update_function_configuration",
        {"FunctionName": name, "LastUpdateStatus": "InProgress"},
        {"FunctionName": name, "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}},
    )
    client.add_response(
        "get_function_configuration",
        {"FunctionName": name, "State": "Active", "LastUpdateStatus": "Successful"},
        {"FunctionName": name},
    )
    client.add_response("delete_function", {}, {"FunctionName": name})
    resource = cleanup.Resource("lambda function", name, "20", "unit")
    lambda_.functions._delete(offline_lab, resource)
    client.assert_no_pending_responses()


def test_a_group_is_deleted_after_rules_naming_it_and_its_interfaces_are_gone(offline_lab, stubber):
    client = stubber("ec2")
    pair = {"GroupId": "sg-proxy", "UserId": "123456789012"}
    groups = [
        {
            "GroupId": "sg-db",
            "GroupName": "default",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [pair]},
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-db"}]},
            ],
        },
        {"GroupId": "sg-proxy", "GroupName": "scd-unit-20-proxy", "IpPermissions": []},
    ]
    client.add_response("describe_security_groups", {"SecurityGroups": groups})
    client.add_response(
        "revoke_security_group_ingress",
        {"Return": True},
        {
            "GroupId": "sg-db",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 3306,
                    "ToPort": 3306,
                    "UserIdGroupPairs": [pair],
                }
            ],
        },
    )
    interface = {"NetworkInterfaceId": "eni-1", "Description": "AWS Lambda VPC ENI-scd-unit-20-fn"}
    filters = {"Filters": [{"Name": "group-id", "Values": ["sg-proxy"]}]}
    client.add_response("describe_network_interfaces", {"NetworkInterfaces": [interface]}, filters)
    client.add_response("describe_network_interfaces", {"NetworkInterfaces": []}, filters)
    client.add_response("delete_security_group", {}, {"GroupId": "sg-proxy"})
    resource = cleanup.Resource(rds_proxy.PROXY_GROUP_KIND, "sg-proxy", "20", "unit")
    cleanup.declared_kinds()[rds_proxy.PROXY_GROUP_KIND].delete(offline_lab, resource)
    client.assert_no_pending_responses()


def test_teardown_order_puts_functions_before_the_proxy_and_groups_last():
    order = [k.name for k in cleanup.teardown_order(cleanup.declared_kinds().values())]
    assert order.index("lambda function") < order.index(rds_proxy.KIND)
    for group in (rds_proxy.CLIENT_GROUP_KIND, rds_proxy.PROXY_GROUP_KIND):
        assert order.index(rds_proxy.KIND) < order.index(group)


def test_ensure_function_sends_and_compares_the_vpc_config(offline_lab, stubber, tmp_path):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    client = stubber("lambda")
    name = "scd-unit-20-fn"
    zipped = lambda_.package_zip(tmp_path)
    config = {
        "FunctionName": name,
        "Role": ROLE,
        "MemorySize": 256,
        "Timeout": 10,
        "Handler": "app.handler",
        "Runtime": "python3.12",
        "CodeSha256": lambda_.code_sha256(zipped),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "LastModified": dt.datetime.now(dt.UTC).isoformat(),
        "VpcConfig": {
            "SubnetIds": ["subnet-b", "subnet-a"],
            "SecurityGroupIds": ["sg-clients"],
            "VpcId": "vpc-1",
        },
    }
    client.add_response("get_function", {"Configuration": config}, {"FunctionName": name})
    result = lambda_.ensure_function(
        offline_lab,
        "20",
        "fn",
        role_arn=ROLE,
        zip_dir=tmp_path,
        handler="app.handler",
        memory_mb=256,
        timeout_s=10,
        subnet_ids=["subnet-a", "subnet-b"],
        security_group_ids=["sg-clients"],
    )
    assert result["VpcConfig"]["VpcId"] == "vpc-1"  # same subnets in another order: no update
    client.assert_no_pending_responses()
    with pytest.raises(ValueError, match="both subnet_ids and security_group_ids"):
        lambda_.ensure_function(
            offline_lab,
            "20",
            "fn",
            role_arn=ROLE,
            zip_dir=tmp_path,
            handler="app.handler",
            subnet_ids=["subnet-a"],
        )


@pytest.mark.parametrize(("pinned_at", "waits"), [(600.0, 43.0), (599.0, None)])
def test_a_storm_starts_after_the_minute_of_earlier_pins(
    offline_lab, monkeypatch, pinned_at, waits
):
    """Pins at 10:00 are counted in minute 10 by CloudWatch: a storm at 10:17 waits 43 s."""
    slept = []
    monkeypatch.setattr(rds_proxy.time, "sleep", slept.append)
    monkeypatch.setattr(rds_proxy.time, "time", lambda: pinned_at)
    offline_lab.ledger.record(rds_proxy.KIND, "scd-unit-20-fn", "20", rds_proxy.PINNED)
    monkeypatch.setattr(rds_proxy.time, "time", lambda: 610.0)  # another function's pins
    offline_lab.ledger.record(rds_proxy.KIND, "scd-unit-20-other", "20", rds_proxy.PINNED)
    monkeypatch.setattr(rds_proxy.time, "time", lambda: 617.0)
    rds_proxy._wait_out_minute_of_earlier_pins(offline_lab, "scd-unit-20-fn")
    assert slept == ([waits] if waits else [])
