"""The AWS timing profile: each rule answers with AWS's error (or its delay), then lets go.

One private daemon for the module runs with LOCALCLOUD_TIMING=aws at scale 0.2, so IAM's
propagation delay is 2 s, metric ingestion 12 s and a new stage 2 s; creation and deletion
times are 0.01 of AWS's (lifecycle factor 0.05: a 10-minute instance creation takes 6 s).
Each test shows the refusal right after the change and the success once the delay has
passed, or the status sequence; a normal run (every other test module) shows the rules are
off by default.
"""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import json
import shutil
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from live_fixtures import LAMBDA_TRUST, AuroraClusters, unique, zip_files
from polling import wait_until

import helpers
from localcloud import daemon
from localcloud.timing import (
    LIFECYCLE_FACTOR,
    LIFECYCLES,
    Lifecycle,
    TimingProfile,
    timing_profile,
)

PROXY_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "rds.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def aws_lab() -> Iterator[helpers.Lab]:
    """A lab on a daemon of its own, under the AWS timing profile at scale 0.2."""
    state = Path(tempfile.mkdtemp(prefix="localcloud-timing-"))
    state.chmod(0o755)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOCALCLOUD_STATE_DIR", str(state))
        env.setenv("LOCALCLOUD_PORT", "0")
        env.setenv("LOCALCLOUD_TIMING", "aws")
        env.setenv("LOCALCLOUD_TIMING_SCALE", "0.2")
        env.setenv("LOCALCLOUD_LIFECYCLE_FACTOR", "0.05")  # half the default, for speed
        info = daemon.up(quiet=True)
        assert info.timing == "aws x0.2 lifecycle x0.05"
        try:
            yield helpers.connect("local", run_id="timing", quiet=True)
        finally:
            daemon.down()
    shutil.rmtree(state, ignore_errors=True)


def _error(call: Any, **params: Any) -> dict[str, str]:
    """The AWS error a call answers (it must fail)."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def _role(lab: helpers.Lab, trust: dict[str, Any]) -> str:
    """A role created now; its ARN."""
    return lab.client("iam").create_role(
        RoleName=unique("timing"), AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]


def test_a_new_role_reaches_lambda_only_after_propagating(aws_lab):
    client = aws_lab.client("lambda")
    params = {
        "FunctionName": unique("timing"),
        "Runtime": "python3.12",
        "Role": _role(aws_lab, LAMBDA_TRUST),
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return 1\n"})},
    }
    error = _error(client.create_function, **params)
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == "The role defined for the function cannot be assumed by Lambda."

    def created() -> bool:
        try:
            client.create_function(**params)
        except ClientError as again:
            assert "cannot be assumed" in again.response["Error"]["Message"]
            return False
        return True

    wait_until(created, what="the role to reach Lambda", timeout=30, interval=0.5)


def test_ecs_creates_its_service_linked_role_on_a_first_failing_call(aws_lab):
    ecs, iam = aws_lab.client("ecs"), aws_lab.client("iam")
    error = _error(ecs.create_cluster, clusterName="timing")
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("Unable to assume the service linked role.")
    roles = iam.list_roles(PathPrefix="/aws-service-role/ecs.amazonaws.com/")["Roles"]
    assert [r["RoleName"] for r in roles] == ["AWSServiceRoleForECS"]
    cluster = wait_until(
        lambda: _succeeds(ecs.create_cluster, clusterName="timing"),
        what="CreateCluster to succeed once the role has propagated",
        timeout=30,
        interval=0.5,
    )
    assert cluster["cluster"]["status"] == "ACTIVE"

    definition = ecs.register_task_definition(
        family=unique("timing"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn=_role(aws_lab, ECS_TASKS_TRUST),
        containerDefinitions=[{"name": "app", "image": "busybox", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    subnet = aws_lab.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    error = _error(
        ecs.run_task,
        cluster="timing",
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("ECS was unable to assume the role 'arn:aws:iam::")


def _succeeds(call: Any, **params: Any) -> Any:
    """The call's answer, or None while it fails with AWS's propagation error."""
    try:
        return call(**params)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidParameterException"
        return None


@pytest.mark.long
def test_metric_data_become_readable_after_the_ingestion_delay(aws_lab):
    cloudwatch = aws_lab.client("cloudwatch")
    namespace = unique("Timing")
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 7}])
    now = dt.datetime.now(dt.UTC)

    def datapoints() -> list[dict[str, Any]]:
        return cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName="M",
            Statistics=["Sum"],
            Period=60,
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
        )["Datapoints"]

    assert datapoints() == []  # on AWS too: a metric read right after it was put is empty
    points = wait_until(datapoints, what="the datum to be readable", timeout=60, interval=1)
    assert [p["Sum"] for p in points] == [7]


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_new_stage_answers_404_until_it_is_deployed(aws_lab):
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        api = aws_lab.client("apigatewayv2").create_api(
            Name=unique("timing"),
            ProtocolType="HTTP",
            Target=f"http://127.0.0.1:{backend.server_port}/",
        )
        url = aws_lab.url_for(api)

        def status() -> int:
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    return answer.status
            except urllib.error.HTTPError as refused:
                return refused.code

        assert status() == 404
        wait_until(lambda: status() == 200, what="the stage to serve", timeout=30, interval=0.3)
    finally:
        backend.shutdown()


def test_a_new_rest_api_stage_answers_403_until_it_is_deployed(aws_lab):
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    client = aws_lab.client("apigateway")
    api = client.create_rest_api(name=unique("timing"))
    try:
        root = api["rootResourceId"]
        client.put_method(
            restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE"
        )
        client.put_integration(
            restApiId=api["id"],
            resourceId=root,
            httpMethod="GET",
            type="HTTP_PROXY",
            integrationHttpMethod="GET",
            uri=f"http://127.0.0.1:{backend.server_port}/",
        )
        client.create_deployment(restApiId=api["id"], stageName="prod")
        url = aws_lab.url_for(client.get_rest_api(restApiId=api["id"]), "prod") + "/"

        def status() -> int:
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    return answer.status
            except urllib.error.HTTPError as refused:
                return refused.code

        assert status() == 403
        wait_until(lambda: status() == 200, what="the stage to serve", timeout=30, interval=0.3)
    finally:
        client.delete_rest_api(restApiId=api["id"])
        backend.shutdown()


def test_the_profile_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("LOCALCLOUD_TIMING", raising=False)
    monkeypatch.delenv("LOCALCLOUD_TIMING_SCALE", raising=False)
    monkeypatch.delenv("LOCALCLOUD_LIFECYCLE_FACTOR", raising=False)
    assert timing_profile() == TimingProfile("local", 0.2)
    assert timing_profile().delay(10) == 0
    monkeypatch.setenv("LOCALCLOUD_TIMING", "aws")
    monkeypatch.setenv("LOCALCLOUD_TIMING_SCALE", "0.5")
    assert timing_profile().delay(10) == 5
    for name, value, field in (
        ("LOCALCLOUD_TIMING_SCALE", "0", "LOCALCLOUD_TIMING_SCALE"),
        ("LOCALCLOUD_TIMING_SCALE", "fast", "LOCALCLOUD_TIMING_SCALE"),
        ("LOCALCLOUD_TIMING", "azure", "LOCALCLOUD_TIMING"),
        ("LOCALCLOUD_LIFECYCLE_FACTOR", "2", "LOCALCLOUD_LIFECYCLE_FACTOR"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=field):
            timing_profile()
        monkeypatch.setenv("LOCALCLOUD_TIMING", "aws")
        monkeypatch.setenv("LOCALCLOUD_TIMING_SCALE", "0.5")
        monkeypatch.delenv("LOCALCLOUD_LIFECYCLE_FACTOR", raising=False)
    monkeypatch.setenv("LOCALCLOUD_LIFECYCLE_FACTOR", "0")  # the lifecycle rules off
    assert timing_profile().lifecycle_delay(600) == 0
    assert timing_profile().describe() == "aws x0.5 lifecycle x0"


# ----- creation and deletion times (LIFECYCLES x 0.05 x 0.2 here) ------------------------


def test_lifecycle_times_apply_under_the_profile_only():
    local = Lifecycle(TimingProfile("local", 0.2), "aurora instance")
    local.created("db")
    local.deleted("db", {"shown": True})
    assert (local.creating("db"), local.deleting("db")) == (False, None)
    aws = Lifecycle(TimingProfile("aws", 0.5), "aurora instance")
    assert aws.create_s == LIFECYCLES["aurora instance"].create_s * 0.5 * LIFECYCLE_FACTOR
    aws.created("db")
    assert aws.creating("db") and 0 < aws.seconds_left("db") <= aws.create_s
    aws.deleted("db", {"shown": True})
    assert not aws.creating("db")
    assert aws.deleting("db") == {"shown": True} == aws.still_deleting()["db"]


def _status(describe: Any, key: str, **params: Any) -> str:
    """The status a describe call answers, or 'gone' for AWS's not-found error."""
    try:
        found = describe(**params)
    except ClientError as error:
        assert "NotFound" in error.response["Error"]["Code"], error.response["Error"]
        return "gone"
    if key in found:
        return found[key]
    items = next(v for v in found.values() if isinstance(v, list))
    return items[0][key]


def _sequence(read: Any, until: str, timeout: float = 60) -> list[str]:
    """The distinct statuses `read` answers, in order, until it answers `until`."""
    seen: list[str] = []

    def reached() -> bool:
        status = read()
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == until

    wait_until(reached, what=f"status {until}", timeout=timeout, interval=0.2)
    return seen


@pytest.mark.long
def test_aurora_clusters_and_instances_take_time_to_create_and_delete(aws_lab):
    rds = aws_lab.client("rds")
    clusters = AuroraClusters(rds)
    cluster = clusters.create("timing", writer=False, EnableHttpEndpoint=True)
    identifier = cluster["DBClusterIdentifier"]
    assert cluster["Status"] == "creating"
    error = _error(rds.enable_http_endpoint, ResourceArn=cluster["DBClusterArn"])
    assert error["Code"] == "InvalidDBClusterStateFault"
    error = _error(rds.delete_db_cluster, DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    assert error["Code"] == "InvalidDBClusterStateFault"
    cluster_status = lambda: _status(  # noqa: E731
        rds.describe_db_clusters, "Status", DBClusterIdentifier=identifier
    )
    assert _sequence(cluster_status, "available") == ["creating", "available"]

    writer = f"{identifier}-w1"
    rds.create_db_instance(
        DBInstanceIdentifier=writer,
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        DBInstanceClass="db.serverless",
    )
    instance = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]
    assert instance["DBInstanceStatus"] == "creating" and "Endpoint" not in instance
    # The Data API has no instance to run on yet: the writer is still being created.
    secret = cluster["MasterUserSecret"]["SecretArn"]
    error = _error(
        aws_lab.client("rds-data").execute_statement,
        resourceArn=cluster["DBClusterArn"],
        secretArn=secret,
        sql="SELECT 1",
    )
    assert error["Code"] == "DatabaseNotFoundException"
    instance_status = lambda: _status(  # noqa: E731
        rds.describe_db_instances, "DBInstanceStatus", DBInstanceIdentifier=writer
    )
    assert _sequence(instance_status, "available") == ["creating", "available"]

    rds.delete_db_instance(DBInstanceIdentifier=writer)
    listed = rds.describe_db_instances()["DBInstances"]
    assert [i["DBInstanceStatus"] for i in listed if i["DBInstanceIdentifier"] == writer] == [
        "deleting"
    ]
    assert _sequence(instance_status, "gone") == ["deleting", "gone"]
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    assert _sequence(cluster_status, "gone") == ["deleting", "gone"]


def _refused(host: str, port: int) -> bool:
    """Whether a TCP client gets no service: refused, or reset before any byte."""
    try:
        with socket.create_connection((host, port), timeout=5) as client:
            return client.recv(1) == b""
    except (ConnectionRefusedError, ConnectionResetError):
        return True


@pytest.mark.long
def test_an_rds_proxy_refuses_connections_until_it_is_available(aws_lab):
    rds, iam = aws_lab.client("rds"), aws_lab.client("iam")
    clusters = AuroraClusters(rds)
    cluster = clusters.create("timing-proxy")  # its writer is created meanwhile
    identifier = cluster["DBClusterIdentifier"]
    role = iam.create_role(
        RoleName=unique("timing-proxy"), AssumeRolePolicyDocument=json.dumps(PROXY_TRUST)
    )["Role"]
    subnets = [s["SubnetId"] for s in aws_lab.client("ec2").describe_subnets()["Subnets"]][:2]
    name = unique("timing-proxy")
    secret = cluster["MasterUserSecret"]["SecretArn"]
    proxy = rds.create_db_proxy(
        DBProxyName=name,
        EngineFamily="MYSQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret, "IAMAuth": "DISABLED"}],
        RoleArn=role["Arn"],
        VpcSubnetIds=subnets,
    )["DBProxy"]
    assert proxy["Status"] == "creating"
    assert _refused(proxy["Endpoint"], 3306)
    error = _error(rds.register_db_proxy_targets, DBProxyName=name, DBClusterIdentifiers=["x"])
    assert error["Code"] == "InvalidDBProxyStateFault"
    proxy_status = lambda: _status(rds.describe_db_proxies, "Status", DBProxyName=name)  # noqa: E731
    assert _sequence(proxy_status, "available") == ["creating", "available"]
    assert not _refused(proxy["Endpoint"], 3306)  # the server's greeting arrives

    writer = lambda: _status(  # noqa: E731
        rds.describe_db_instances, "DBInstanceStatus", DBInstanceIdentifier=f"{identifier}-w1"
    )
    wait_until(lambda: writer() == "available", what="the writer", timeout=60)
    rds.register_db_proxy_targets(DBProxyName=name, DBClusterIdentifiers=[identifier])

    def target_state() -> str:
        targets = rds.describe_db_proxy_targets(DBProxyName=name)["Targets"]
        return next(t["TargetHealth"]["State"] for t in targets if "TargetHealth" in t)

    assert _sequence(target_state, "AVAILABLE") == ["REGISTERING", "AVAILABLE"]
    rds.delete_db_proxy(DBProxyName=name)
    assert _sequence(proxy_status, "gone") == ["deleting", "gone"]
    clusters.delete_all()
    iam.delete_role(RoleName=role["RoleName"])


def test_a_serverless_cache_is_creating_then_deleting(aws_lab):
    cache = aws_lab.client("elasticache")
    name = unique("timing")
    created = cache.create_serverless_cache(ServerlessCacheName=name, Engine="valkey")
    assert created["ServerlessCache"]["Status"] == "creating"
    error = _error(cache.modify_serverless_cache, ServerlessCacheName=name, Description="x")
    assert error["Code"] == "InvalidServerlessCacheStateFault"
    status = lambda: _status(  # noqa: E731
        cache.describe_serverless_caches, "Status", ServerlessCacheName=name
    )
    assert "Endpoint" not in cache.describe_serverless_caches(ServerlessCacheName=name)[
        "ServerlessCaches"][0]  # fmt: skip
    assert _sequence(status, "available") == ["creating", "available"]
    cache.delete_serverless_cache(ServerlessCacheName=name)
    assert _sequence(status, "gone") == ["deleting", "gone"]


def test_a_load_balancer_serves_only_once_it_is_active(aws_lab):
    ec2, elbv2 = aws_lab.client("ec2"), aws_lab.client("elbv2")
    subnets = ec2.describe_subnets()["Subnets"]
    group = ec2.create_security_group(
        GroupName=unique("timing-alb"), Description="alb", VpcId=subnets[0]["VpcId"]
    )["GroupId"]
    balancer = elbv2.create_load_balancer(
        Name=unique("timing-alb")[:32],
        Subnets=[s["SubnetId"] for s in subnets[:2]],
        SecurityGroups=[group],
        Type="application",
    )["LoadBalancers"][0]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "ok"},
            }
        ],
    )
    url = aws_lab.url_for(balancer)

    def answer() -> str:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.status)
        except (http.client.RemoteDisconnected, ConnectionResetError, urllib.error.URLError):
            return "no answer"

    def state() -> str:
        arn = balancer["LoadBalancerArn"]
        found = elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
        return f"{found['State']['Code']}: {answer()}"

    assert balancer["State"]["Code"] == "provisioning"
    assert _sequence(state, "active: 200") == ["provisioning: no answer", "active: 200"]
    elbv2.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])
    ec2.delete_security_group(GroupId=group)


@pytest.mark.long
def test_a_vpc_function_is_pending_and_its_interfaces_outlive_it(aws_lab):
    ec2, client = aws_lab.client("ec2"), aws_lab.client("lambda")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(
        GroupName=unique("timing-fn"), Description="fn", VpcId=subnet["VpcId"]
    )["GroupId"]
    name = unique("timing-vpc")
    params = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": _role(aws_lab, LAMBDA_TRUST),
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return 1\n"})},
        "VpcConfig": {"SubnetIds": [subnet["SubnetId"]], "SecurityGroupIds": [group]},
    }
    created = wait_until(
        lambda: _created_function(client, params), what="the role to reach Lambda", timeout=30
    )
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    error = _error(client.invoke, FunctionName=name)
    assert error["Code"] == "ResourceConflictException"
    assert error["Message"].endswith("The function is currently in the following state: Pending")
    state = lambda: client.get_function_configuration(FunctionName=name)["State"]  # noqa: E731
    assert _sequence(state, "Active") == ["Pending", "Active"]
    assert client.invoke(FunctionName=name)["Payload"].read() == b"1"

    def interfaces() -> list[str]:
        found = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])[
            "NetworkInterfaces"
        ]
        return [i["Description"] for i in found]

    assert interfaces() == [f"AWS Lambda VPC ENI-{name}"]
    client.delete_function(FunctionName=name)
    error = _error(ec2.delete_security_group, GroupId=group)
    assert (error["Code"], error["Message"]) == (
        "DependencyViolation",
        f"resource {group} has a dependent object",
    )
    wait_until(lambda: not interfaces(), what="the interfaces to be released", timeout=90)
    ec2.delete_security_group(GroupId=group)


def _created_function(client: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """CreateFunction's answer, or None while the new role has not reached Lambda."""
    try:
        return client.create_function(**params)
    except ClientError as error:
        assert "cannot be assumed" in error.response["Error"]["Message"]
        return None


def test_an_event_source_mapping_is_creating_then_deleting(aws_lab):
    dynamodb, client = aws_lab.client("dynamodb"), aws_lab.client("lambda")
    table = dynamodb.create_table(
        TableName=unique("timing"),
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    params = {
        "FunctionName": unique("timing-esm"),
        "Runtime": "python3.12",
        "Role": _role(aws_lab, LAMBDA_TRUST),
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return 1\n"})},
    }
    wait_until(lambda: _created_function(client, params), what="the function", timeout=30)
    mapping = client.create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"],
        FunctionName=params["FunctionName"],
        StartingPosition="LATEST",
    )
    assert mapping["State"] == "Creating"
    error = _error(client.update_event_source_mapping, UUID=mapping["UUID"], BatchSize=10)
    assert error["Code"] == "ResourceInUseException"
    state = lambda: _status(client.get_event_source_mapping, "State", UUID=mapping["UUID"])  # noqa: E731
    assert _sequence(state, "Enabled") == ["Creating", "Enabled"]
    assert client.delete_event_source_mapping(UUID=mapping["UUID"])["State"] == "Deleting"
    assert _sequence(state, "gone") == ["Deleting", "gone"]
