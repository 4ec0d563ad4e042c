"""The local ALB's cost: a request forwarded by the load balancer against a direct one.

One Fargate task (a stdlib HTTP server) runs on the local cloud behind a target group and
a listener. The same keep-alive client then times GET requests through the listener and
straight to the task's local port; the ratio of the medians is the load balancer's share.
"""

from __future__ import annotations

import http.client
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .timing import timings, until

SERVER = textwrap.dedent(
    """
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real web server would
        disable_nagle_algorithm = True  # headers and body go in two writes

        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    address = (os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))
    ThreadingHTTPServer(address, Handler).serve_forever()
    """
)


def _getter(url: str) -> Any:
    """A function that GETs `url` on one kept-alive connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    path = parts.path or "/"

    def get() -> None:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET {url} answered {answer.status}")

    return get


def bench_alb(lab: Any, repeat: int = 1000) -> dict[str, Any]:
    """Median and p99 of ALB-forwarded and direct requests to one task, and their ratio."""
    import helpers
    from helpers.lab import local_endpoints

    ecs, ec2, elb = lab.client("ecs"), lab.client("ec2"), lab.client("elbv2")
    repository = helpers.ecr.ensure_repository(lab, "18", "bench-web")
    with tempfile.TemporaryDirectory() as folder:
        context = Path(folder)
        (context / "server.py").write_text(SERVER)
        (context / "Dockerfile").write_text(
            'FROM python:3.12-slim\nWORKDIR /app\nCOPY server.py .\nCMD ["python", "server.py"]\n'
        )
        image = helpers.images.build_and_push(lab, repository, context, "v1")
    ecs.create_cluster(clusterName="bench")
    definition = ecs.register_task_definition(
        family="bench-web",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": image.image_uri,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    task = ecs.run_task(
        cluster="bench",
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets}},
    )["tasks"][0]
    balancer = elb.create_load_balancer(Name="bench", Subnets=subnets)["LoadBalancers"][0]
    group = elb.create_target_group(
        Name="bench",
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc["VpcId"],
        TargetType="ip",
        HealthCheckPath="/",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )

    def running() -> dict | None:
        found = ecs.describe_tasks(cluster="bench", tasks=[task["taskArn"]])["tasks"][0]
        return found if found["lastStatus"] == "RUNNING" else None

    described = until(running, 60, "the task to run")
    address = described["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": address, "Port": 8080}])
    until(
        lambda: (
            elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"][0][
                "TargetHealth"
            ]["State"]
            == "healthy"
        ),
        60,
        "the target to be healthy",
    )
    direct_url = local_endpoints(lab)["ecs"]["tasks"][task["taskArn"]]["web:8080"] + "/"
    alb_url = lab.url_for(balancer) + "/"
    direct = timings(_getter(direct_url), repeat, warmup=50)
    forwarded = timings(_getter(alb_url), repeat, warmup=50)
    ecs.stop_task(cluster="bench", task=task["taskArn"])
    return {
        "direct": direct,
        "via_alb": forwarded,
        "ratio_median": round(forwarded["median_ms"] / direct["median_ms"], 2),
        "ratio_p99": round(forwarded["p99_ms"] / direct["p99_ms"], 2),
    }
