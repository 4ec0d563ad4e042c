"""The metric store every provider publishes AWS/* metrics to, and its batched publisher.

The CloudWatch provider answers the metric API calls from the same store.
"""

from .publisher import MetricPublisher
from .store import MetricStore

__all__ = ["MetricPublisher", "MetricStore"]
