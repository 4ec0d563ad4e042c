"""Pattern 22's service under load: GET /inventory through the ALB, with 50 keep-alive clients.

The inventory app of notebook 22 (code/22_fargate_aurora_proxy/) runs as an ECS service of
two tasks behind an ALB, on Aurora through RDS Proxy as its own database user, set up with
the course's helpers as the notebook does. Clients send requests back to back for a fixed
time; the figures are requests per second, p50 and p99 of the round trip, and errors (any
answer but 200, or a broken connection).
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

APP = Path(__file__).resolve().parents[1] / "code" / "22_fargate_aurora_proxy"
CLIENTS, SECONDS, TASKS, ROWS = 50, 10.0, 2, 20


def _deploy(lab: Any) -> str:
    """The notebook's resources, made with the same helpers; the URL of GET /inventory."""
    import helpers

    cluster = helpers.aurora.ensure_cluster(lab, "22", "bench", min_acu=0.5, max_acu=4)
    db = helpers.rds_data.DataApi.for_cluster(lab, cluster)
    db.execute(
        "CREATE TABLE IF NOT EXISTS inventory (sku VARCHAR(50) PRIMARY KEY, "
        "name VARCHAR(100) NOT NULL, stock INT NOT NULL DEFAULT 0, "
        "reserved INT NOT NULL DEFAULT 0, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    )
    db.batch(
        "INSERT IGNORE INTO inventory (sku, name, stock) VALUES (:sku, :name, 100)",
        [{"sku": f"SKU-{n:03d}", "name": f"Item {n}"} for n in range(ROWS)],
    )
    network = helpers.rds_proxy.ensure_network(lab, "22", cluster.identifier)
    role = helpers.rds_proxy.ensure_proxy_role(lab, "22", cluster.secret_arn)
    proxy = helpers.rds_proxy.ensure_proxy(
        lab, "22", "proxy", secret_arn=cluster.secret_arn, role_arn=role["Arn"], network=network
    )
    helpers.rds_proxy.ensure_targets(lab, proxy, cluster.identifier)
    user = helpers.aurora.ensure_app_user(
        lab, "22", "bench-user", cluster, username="bench_app", privileges={"inventory": ["SELECT"]}
    )
    helpers.aurora.allow_through_proxy(lab, proxy.name, user)
    repository = helpers.ecr.ensure_repository(lab, "22", "bench-inventory")
    image = helpers.images.build_and_push(lab, repository, APP, tag="v1")
    log_group = helpers.ecs.log_group_name(lab, "22", "bench")
    execution = helpers.ecs.task_execution_role(
        lab,
        "22",
        "bench-exec",
        log_group=log_group,
        repository_arn=repository["repositoryArn"],
        secret_arns=[user.secret_arn],
    )
    definition = helpers.ecs.ensure_task_definition(
        lab,
        "22",
        "bench",
        image_uri=image.image_uri,
        container_name="api",
        port=8080,
        execution_role_arn=execution["Arn"],
        log_group=log_group,
        stream_prefix="bench",
        environment={"DB_HOST": proxy.endpoint, "DB_NAME": cluster.database, "POOL_SIZE": "10"},
        secrets={
            "DB_USER": user.value_from("username"),
            "DB_PASSWORD": user.value_from("password"),
        },
    )
    vpc_id, subnets = helpers.ecs.default_subnets(lab)
    alb_group = helpers.elbv2.ensure_alb_security_group(lab, "22", vpc_id)
    task_group = helpers.ecs.ensure_task_security_group(lab, "22", vpc_id)
    helpers.ec2.allow_from_group(lab, network.proxy_group_id, task_group, 3306, "bench tasks")
    balancer = helpers.elbv2.ensure_load_balancer(
        lab, "22", "bench", subnets=subnets, security_groups=[alb_group]
    )
    # Its requests take milliseconds: a 2 s drain instead of the 30 s default ends the run sooner.
    target_group = helpers.elbv2.ensure_target_group(
        lab,
        "22",
        "bench",
        vpc_id=vpc_id,
        port=8080,
        interval_s=5,
        timeout_s=2,
        deregistration_delay_s=2,
    )
    helpers.elbv2.ensure_listener(lab, balancer["LoadBalancerArn"], target_group["TargetGroupArn"])
    ecs_cluster = helpers.ecs.ensure_cluster(lab, "22", "bench")["clusterArn"]
    service = helpers.ecs.ensure_service(
        lab,
        ecs_cluster,
        "bench",
        definition["taskDefinitionArn"],
        security_group_id=task_group,
        desired_count=TASKS,
        target_group_arn=target_group["TargetGroupArn"],
        container_name="api",
        container_port=8080,
    )
    helpers.ecs.wait_for_steady_state(lab, ecs_cluster, service["serviceName"])
    helpers.elbv2.wait_for_healthy_targets(lab, target_group["TargetGroupArn"], TASKS)
    return f"{lab.url_for(balancer)}/inventory"


def _client(url: str, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    """GET `url` back to back on one kept-alive connection until `stop_at`."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            connection.request("GET", parts.path)
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200 or b'"count":%d' % ROWS not in body.replace(b" ", b""):
                errors.append(f"HTTP {answer.status}")
                continue
        except (OSError, http.client.HTTPException) as error:
            errors.append(type(error).__name__)
            connection.close()
            connection = http.client.HTTPConnection(parts.netloc, timeout=30)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()


def bench_inventory(lab: Any, clients: int = CLIENTS, seconds: float = SECONDS) -> dict[str, Any]:
    """Requests/s, p50 and p99 (ms) and errors of GET /inventory through the ALB."""
    import helpers

    url = _deploy(lab)
    try:
        return _measure(url, clients, seconds)
    finally:  # the tasks' health checks would disturb the benchmarks that follow
        helpers.cleanup.teardown(lab, pattern="22", quiet=True)


def _measure(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, each on its own keep-alive connection, for `seconds`."""
    warm: list[float] = []
    _client(url, time.perf_counter() + 1.0, warm, [])  # first connections, first queries
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_client, args=(url, stop_at, latencies[i], errors))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    samples = sorted(x for per_client in latencies for x in per_client)
    if not samples:
        return {"error": f"no request succeeded ({len(errors)} errors: {errors[:3]})"}
    p99 = samples[min(len(samples) - 1, round(0.99 * len(samples)) - 1)]
    return {
        "clients": clients,
        "tasks": TASKS,
        "seconds": round(wall, 2),
        "requests": len(samples) + len(errors),
        "per_s": round(len(samples) / wall, 1),
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(p99, 2),
        "n": len(samples),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
    }
