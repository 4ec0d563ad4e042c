"""AWS/ApplicationELB metrics: the data points of one request, and the host counts.

A request's data points go to the local cloud's batched publisher (`CloudContext.publisher`),
which writes them to the local CloudWatch about once a second, so a request thread only
appends samples. Health rounds write HealthyHostCount/UnHealthyHostCount to the store at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..metrics import MetricPublisher, MetricStore
from ..metrics.publisher import DataPoint
from .rules import arn_dimension

NAMESPACE = "AWS/ApplicationELB"
_ELB_CODES = (500, 502, 503, 504)
_ACTION_COUNTS = {"redirect": "HTTP_Redirect_Count", "fixed": "HTTP_Fixed_Response_Count"}

# (metric name, dimensions, value, unit)


def request_data(
    balancer: str, group: str, status: int, origin: str, seconds: float | None
) -> list[DataPoint]:
    """What one request counts, by LoadBalancer and (with a group) LoadBalancer+TargetGroup.

    `origin` is "target" (the target answered in `seconds`), "elb" (an error page of the
    load balancer), "redirect" or "fixed" (an action's answer); `group` may be "".
    """
    by_balancer = {"LoadBalancer": balancer}
    scopes = [by_balancer]
    if group:
        scopes.append({"LoadBalancer": balancer, "TargetGroup": group})
    data: list[DataPoint] = [("RequestCount", dims, 1.0, "Count") for dims in scopes]
    if origin == "target":
        for dims in scopes:
            data.append((f"HTTPCode_Target_{status // 100}XX_Count", dims, 1.0, "Count"))
            if seconds is not None:
                data.append(("TargetResponseTime", dims, seconds, "Seconds"))
        return data
    # The load balancer's own answers are counted per load balancer only.
    data.append((f"HTTPCode_ELB_{status // 100}XX_Count", by_balancer, 1.0, "Count"))
    if status in _ELB_CODES:
        data.append((f"HTTPCode_ELB_{status}_Count", by_balancer, 1.0, "Count"))
    if origin in _ACTION_COUNTS:
        data.append((_ACTION_COUNTS[origin], by_balancer, 1.0, "Count"))
    return data


def record_request(
    publisher: MetricPublisher,
    balancer: str,
    group: str,
    status: int,
    origin: str,
    seconds: float | None,
) -> None:
    """Hand one request to the batched publisher, which works out its data points later."""
    publisher.record_with(NAMESPACE, request_data, (balancer, group, status, origin, seconds))


def publish_host_counts(
    store: MetricStore, group_arn: str, balancers: Iterable[str], healthy: int, unhealthy: int
) -> None:
    """HealthyHostCount and UnHealthyHostCount of a target group, per load balancer."""
    for balancer in balancers:
        dimensions = {
            "LoadBalancer": arn_dimension(balancer),
            "TargetGroup": arn_dimension(group_arn),
        }
        store.put(NAMESPACE, "HealthyHostCount", healthy, dimensions=dimensions, unit="Count")
        store.put(NAMESPACE, "UnHealthyHostCount", unhealthy, dimensions=dimensions, unit="Count")
