"""What a load balancer's targets and metrics say: health per target, latency percentiles.

Latency comes from CloudWatch (`AWS/ApplicationELB`), whose dimensions are the ARN suffixes
`app/<name>/<id>` and `targetgroup/<name>/<id>`; ALBs publish per minute and only while
requests flow (health checks are not counted).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from .. import cloudwatch
from ..lab import Lab
from ..waiting import WaitTimeout, wait_for

NAMESPACE = "AWS/ApplicationELB"
HEALTH_COLUMNS = ["target", "port", "state", "reason", "description"]
LATENCY_COLUMNS = ["p50_ms", "p90_ms", "p99_ms", "requests"]


def target_health(lab: Lab, target_group_arn: str) -> pd.DataFrame:
    """One row per registered target: target, port, state, reason, description."""
    found = lab.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    rows = [
        {
            "target": item["Target"]["Id"],
            "port": item["Target"].get("Port"),
            "state": item.get("TargetHealth", {}).get("State"),
            "reason": item.get("TargetHealth", {}).get("Reason"),
            "description": item.get("TargetHealth", {}).get("Description"),
        }
        for item in found["TargetHealthDescriptions"]
    ]
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.sort_values(["target", "port"], kind="stable").reset_index(drop=True)


def wait_for_healthy_targets(
    lab: Lab, target_group_arn: str, count: int, *, timeout: float = 600
) -> pd.DataFrame:
    """Wait until at least `count` targets are healthy; return target_health's table."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    last: list[pd.DataFrame] = []

    def check() -> tuple[pd.DataFrame] | None:
        frame = target_health(lab, target_group_arn)
        last[:] = [frame]
        return (frame,) if int((frame["state"] == "healthy").sum()) >= count else None

    try:
        return wait_for(
            check,
            what=f"{count} healthy target(s)",
            timeout=timeout,
            pace=lab.pace.targets_healthy,
            hint=(
                "Look at the reasons below: Target.Timeout usually means the tasks' security "
                "group does not admit the load balancer's group on the container port; "
                "Target.ResponseCodeMismatch means the health check path answers another code."
            ),
        )[0]
    except WaitTimeout as error:
        table = last[0].to_string(index=False) if last else "(no targets)"
        raise WaitTimeout(f"{error}\n{table}") from None


def metric_dimensions(
    load_balancer: dict[str, Any], target_group: dict[str, Any] | None = None
) -> dict[str, str]:
    """AWS/ApplicationELB dimensions: `app/<name>/<id>` and `targetgroup/<name>/<id>`."""
    lb_arn = load_balancer.get("LoadBalancerArn", "") if isinstance(load_balancer, dict) else ""
    suffix = lb_arn.partition(":loadbalancer/")[2]
    if not suffix.startswith("app/"):
        raise ValueError(
            "load_balancer must be an Application Load Balancer dict as ensure_load_balancer "
            "returns it (LoadBalancerArn ending in loadbalancer/app/<name>/<id>)"
        )
    dimensions = {"LoadBalancer": suffix}
    if target_group is not None:
        tg_arn = target_group.get("TargetGroupArn", "") if isinstance(target_group, dict) else ""
        tg_suffix = tg_arn.rpartition(":")[2]
        if not tg_suffix.startswith("targetgroup/"):
            raise ValueError(
                "target_group must be a dict as ensure_target_group returns it "
                "(TargetGroupArn ending in targetgroup/<name>/<id>)"
            )
        dimensions["TargetGroup"] = tg_suffix
    return dimensions


def alb_latency_frame(
    lab: Lab,
    load_balancer: dict[str, Any],
    target_group: dict[str, Any] | None,
    start: dt.datetime,
    end: dt.datetime,
    period: int = 60,
) -> pd.DataFrame:
    """TargetResponseTime p50/p90/p99 in ms and RequestCount per period, from CloudWatch."""
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if period < 60 or period % 60:
        raise ValueError(
            f"period must be a multiple of 60 s (ALB metrics are per minute): {period}"
        )
    dimensions = metric_dimensions(load_balancer, target_group)
    metrics = [
        cloudwatch.Metric(NAMESPACE, "TargetResponseTime", stat, dimensions, f"{stat}_ms")
        for stat in ("p50", "p90", "p99")
    ]
    metrics.append(cloudwatch.Metric(NAMESPACE, "RequestCount", "Sum", dimensions, "requests"))
    minutes = math.ceil((end - start).total_seconds() / 60)
    frame = cloudwatch.metrics_frame(lab, metrics, minutes=minutes, period=period, end=end)
    frame = frame.reindex(columns=LATENCY_COLUMNS).astype(float)
    frame[LATENCY_COLUMNS[:3]] *= 1000  # CloudWatch reports TargetResponseTime in seconds
    return frame


def wait_for_alb_metrics(
    lab: Lab,
    load_balancer: dict[str, Any],
    target_group: dict[str, Any] | None,
    *,
    since: dt.datetime,
    requests: int = 1,
    timeout: float = 600,
) -> pd.DataFrame:
    """Wait until CloudWatch counts `requests` requests since `since`; alb_latency_frame then."""

    def check() -> tuple[pd.DataFrame] | None:
        # The current minute's bucket is included: its end lies in the future.
        end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        frame = alb_latency_frame(lab, load_balancer, target_group, since, end).dropna(how="all")
        return (frame,) if frame["requests"].sum() >= requests else None  # a tuple is truthy

    (frame,) = wait_for(
        check,
        what="ALB metrics in CloudWatch",
        timeout=timeout,
        pace=lab.pace.alb_metrics,
        hint="ALBs publish once a minute, a few minutes late; re-run this cell to keep waiting.",
    )
    return frame
