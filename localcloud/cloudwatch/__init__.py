"""CloudWatch metrics: the four metric operations, served from the local metric store."""

from ..services import Service
from .provider import CloudWatchProvider

SERVICE = Service(
    "cloudwatch",
    CloudWatchProvider,
    operations={
        "PutMetricData": "",
        "GetMetricData": "",
        "GetMetricStatistics": "",
        "ListMetrics": "",
    },
)

__all__ = ["SERVICE", "CloudWatchProvider"]
