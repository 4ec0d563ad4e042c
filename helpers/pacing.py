"""How fast each backend is: every named wait of the helpers, and the metric periods to read.

AWS takes minutes where the local cloud takes a second, and publishes its own metrics per
minute where the local cloud publishes them per second. Helpers and notebooks ask
`lab.pace` (one of the two `Pacing`s below) instead of branching on the backend, so the
numbers live here and nowhere else. `progress_bar` draws a wait's (or a load's) progress.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm as tqdm_std
from tqdm.notebook import tqdm as tqdm_notebook


@dataclass(frozen=True)
class Wait:
    """One kind of wait on one backend: how long it usually takes and how often to look."""

    estimate: float  # seconds it usually takes: the length of the progress bar
    interval: float  # seconds between two polls
    timeout: float | None = None  # seconds before giving up, for waits that do not set their own


@dataclass(frozen=True)
class Pacing:
    """The waits of one backend, by what is awaited, and the periods to read metrics with."""

    # A delete that AWS refuses while something still holds the resource (ResourceInUse,
    # DependencyViolation, a cluster with stopping tasks).
    resource_released: Wait
    # ECS
    task_stopped: Wait
    service_steady: Wait
    service_drained: Wait  # a deleted service: its tasks stop and it turns INACTIVE
    ecs_metrics: Wait  # AWS/ECS utilisation of a service appears in CloudWatch
    # Application Load Balancers
    load_balancer_active: Wait
    load_balancer_deleted: Wait
    interfaces_released: Wait  # a deleted load balancer's network interfaces go away
    targets_healthy: Wait
    alb_metrics: Wait  # AWS/ApplicationELB request metrics appear in CloudWatch
    # S3
    object_written: Wait
    # Aurora
    aurora_cluster_created: Wait
    aurora_cluster_ready: Wait  # an existing cluster checked, started or modified
    aurora_writer_ready: Wait
    aurora_data_api_enabled: Wait
    aurora_instance_deleted: Wait
    aurora_cluster_deleted: Wait
    aurora_subnet_group_deleted: Wait
    # Aurora Serverless v2 capacity under load (notebook 19): how long a burst must last to
    # show in the metric, when its rise is in CloudWatch, and when it is back to the floor.
    capacity_burst_s: int
    capacity_rise_seen: Wait
    capacity_back_to_floor: Wait
    # RDS Proxy and VPC Lambda
    rds_proxy_available: Wait  # a new proxy leaves `creating`
    rds_proxy_targets_available: Wait  # registered targets turn AVAILABLE
    rds_proxy_deleted: Wait
    lambda_interfaces_released: Wait  # a detached or deleted VPC function's interfaces go
    # Parallel calls holding their execution environments while the others arrive: the
    # first hold (estimate), doubled until every call has an environment of its own.
    lambda_environments_started: Wait
    # Seconds from sending a storm's calls to the instant they all connect: enough for every
    # call to reach its handler, which waits for the others there.
    storm_lead_s: float
    rds_proxy_metrics: Wait  # AWS/RDS proxy metrics appear in CloudWatch
    # Lambda event source mappings: Creating, Updating, Enabling or Disabling settles; Deleting
    mapping_settled: Wait
    mapping_deleted: Wait
    # ElastiCache Serverless
    cache_available: Wait  # a new serverless cache leaves `creating`
    cache_deleted: Wait
    cache_metrics: Wait  # AWS/ElastiCache metrics appear in CloudWatch
    # Seconds per datapoint of the metrics the backend publishes itself (AWS/RDS capacity).
    metric_period: int
    # Seconds per point when a notebook charts a burst of a few seconds.
    chart_period: int


_AURORA_LOCAL = Wait(estimate=10, interval=0.5, timeout=120)


def _aurora_on_aws(estimate: float) -> Wait:
    """An Aurora wait on AWS: minutes, polled every 10 s, given at least half an hour."""
    return Wait(estimate=estimate, interval=10, timeout=max(1800, 3 * estimate))


LOCAL = Pacing(
    resource_released=Wait(estimate=1, interval=0.5),
    task_stopped=Wait(estimate=5, interval=0.2),
    service_steady=Wait(estimate=15, interval=0.5),
    service_drained=Wait(estimate=10, interval=0.5),
    ecs_metrics=Wait(estimate=5, interval=1.0),
    load_balancer_active=Wait(estimate=1, interval=0.5),
    load_balancer_deleted=Wait(estimate=1, interval=0.5),
    interfaces_released=Wait(estimate=1, interval=0.5),
    targets_healthy=Wait(estimate=5, interval=0.5),
    alb_metrics=Wait(estimate=5, interval=1.0),
    object_written=Wait(estimate=2, interval=0.2),
    aurora_cluster_created=_AURORA_LOCAL,
    aurora_cluster_ready=_AURORA_LOCAL,
    aurora_writer_ready=_AURORA_LOCAL,
    aurora_data_api_enabled=_AURORA_LOCAL,
    aurora_instance_deleted=_AURORA_LOCAL,
    aurora_cluster_deleted=_AURORA_LOCAL,
    aurora_subnet_group_deleted=_AURORA_LOCAL,
    capacity_burst_s=10,
    capacity_rise_seen=Wait(estimate=3, interval=1.0, timeout=60),
    capacity_back_to_floor=Wait(estimate=12, interval=1.0, timeout=180),
    rds_proxy_available=Wait(estimate=3, interval=0.5, timeout=120),
    rds_proxy_targets_available=Wait(estimate=3, interval=0.5, timeout=120),
    rds_proxy_deleted=Wait(estimate=2, interval=0.5, timeout=120),
    lambda_interfaces_released=Wait(estimate=1, interval=0.5, timeout=120),
    # Warm environments answer 120 parallel calls in well under a second here.
    lambda_environments_started=Wait(estimate=1, interval=1, timeout=120),
    storm_lead_s=1.0,
    rds_proxy_metrics=Wait(estimate=3, interval=1.0, timeout=60),
    mapping_settled=Wait(estimate=1, interval=0.25, timeout=300),  # a second locally
    mapping_deleted=Wait(estimate=1, interval=0.25, timeout=300),
    cache_available=Wait(estimate=2, interval=0.5, timeout=120),
    cache_deleted=Wait(estimate=1, interval=0.5, timeout=120),
    cache_metrics=Wait(estimate=3, interval=1.0, timeout=60),
    metric_period=1,
    chart_period=5,
)

AWS = Pacing(
    resource_released=Wait(estimate=60, interval=10.0),
    task_stopped=Wait(estimate=60, interval=5.0),
    service_steady=Wait(estimate=180, interval=10.0),
    service_drained=Wait(estimate=120, interval=10.0),
    ecs_metrics=Wait(estimate=120, interval=15.0),
    load_balancer_active=Wait(estimate=180, interval=10.0),
    load_balancer_deleted=Wait(estimate=20, interval=10.0),
    interfaces_released=Wait(estimate=120, interval=10.0),
    targets_healthy=Wait(estimate=90, interval=5.0),
    alb_metrics=Wait(estimate=180, interval=20.0),
    object_written=Wait(estimate=60, interval=2.0),
    aurora_cluster_created=_aurora_on_aws(420),  # 5-10 minutes for a new cluster
    aurora_cluster_ready=_aurora_on_aws(60),
    aurora_writer_ready=_aurora_on_aws(480),
    aurora_data_api_enabled=_aurora_on_aws(30),
    aurora_instance_deleted=_aurora_on_aws(420),
    aurora_cluster_deleted=_aurora_on_aws(180),
    aurora_subnet_group_deleted=_aurora_on_aws(30),
    # Five one-minute datapoints of load; AWS/RDS data arrive a minute or two late, and
    # Serverless v2 gives capacity back gradually, over several minutes.
    capacity_burst_s=300,
    capacity_rise_seen=Wait(estimate=180, interval=20.0, timeout=900),
    capacity_back_to_floor=Wait(estimate=600, interval=30.0, timeout=2400),
    rds_proxy_available=_aurora_on_aws(300),  # several minutes
    rds_proxy_targets_available=_aurora_on_aws(180),
    rds_proxy_deleted=_aurora_on_aws(120),
    # Lambda releases a VPC function's network interfaces 20 to 40 minutes after a detach
    # or delete (sometimes longer): until then they hold its security groups and subnets.
    lambda_interfaces_released=Wait(estimate=1800, interval=30, timeout=3600),
    # Lambda adds up to 1,000 environments per function every 10 s; a VPC image function's
    # cold start takes seconds.
    lambda_environments_started=Wait(estimate=10, interval=10, timeout=300),
    storm_lead_s=2.0,  # 100-odd HTTPS calls from a laptop
    rds_proxy_metrics=Wait(estimate=180, interval=20.0, timeout=900),
    mapping_settled=Wait(estimate=30, interval=2.0, timeout=300),
    mapping_deleted=Wait(estimate=10, interval=2.0, timeout=300),
    # "under a minute" per AWS's launch post; guides report 2 to 4 minutes, deletion several.
    cache_available=Wait(estimate=120, interval=10.0, timeout=1200),
    cache_deleted=Wait(estimate=180, interval=10.0, timeout=1800),
    cache_metrics=Wait(estimate=180, interval=20.0, timeout=900),
    metric_period=60,
    chart_period=60,
)

BY_BACKEND = {"local": LOCAL, "aws": AWS}


def progress_bar(*, total: float, desc: str, **options: Any) -> tqdm_std:
    """A tqdm bar: a widget in a Jupyter kernel with ipywidgets, else text on stdout.

    The widget leaves nothing behind when it closes (a wait that ends early is no error,
    and a saved notebook keeps no widget that a later session cannot display).
    """
    if _in_widget_kernel():
        return _WidgetBar(total=total, desc=desc, **options)
    return tqdm_std(total=total, desc=desc, file=sys.stdout, **options)


def _in_widget_kernel() -> bool:
    """True in a Jupyter kernel that can show ipywidgets."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class _WidgetBar(tqdm_notebook):
    """tqdm's notebook bar, shown as the widget alone and removed when it closes.

    The output holds only the widget's view (no text/plain "HBox(...)" repr), and closing
    empties it: a saved notebook keeps an empty output, and nbval, which skips widget views,
    compares the same outputs whether or not a wait was long enough to draw a bar.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from IPython.display import display

        super().__init__(*args, display=False, **kwargs)
        view = {"version_major": 2, "version_minor": 0, "model_id": self.container.model_id}
        self._handle = display(
            {"application/vnd.jupyter.widget-view+json": view}, raw=True, display_id=True
        )

    def close(self) -> None:
        """Close without tqdm's red 'danger' style for a bar that stopped before its total."""
        if self.disable:
            return
        tqdm_std.close(self)
        self.container.close()
        if self._handle is not None:
            self._handle.update({}, raw=True)
