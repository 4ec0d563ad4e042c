"""AWS/RDS metrics of a proxy, with AWS's names, units and dimension sets.

Dimension sets (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy.monitoring.html):
D1 ProxyName; D2 ProxyName, EndpointName; D3 ProxyName, TargetGroup, Target;
D4 ProxyName, TargetGroup, TargetRole. Counts go through the batched publisher as they happen;
the gauges ("current" connections) are sampled once a second by the proxy's listener.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..metrics import MetricPublisher, MetricStore
from ..metrics.publisher import DataPoint

NAMESPACE = "AWS/RDS"
ENDPOINT = "default"
TARGET_GROUP = "default"
TARGET_ROLE = "READ_WRITE"

# Which dimension sets each metric is published with.
_CLIENT = ("D1", "D2")
_DATABASE = ("D1", "D3", "D4")
_ALL = ("D1", "D2", "D3", "D4")
SETS = {
    "ClientConnections": _CLIENT,
    "ClientConnectionsClosed": _CLIENT,
    "ClientConnectionsNoTLS": _CLIENT,
    "ClientConnectionsTLS": _CLIENT,
    "ClientConnectionsReceived": _CLIENT,
    "ClientConnectionsSetupFailedAuth": _CLIENT,
    "ClientConnectionsSetupSucceeded": _CLIENT,
    "DatabaseConnectionRequests": _DATABASE,
    "DatabaseConnections": _DATABASE,
    "DatabaseConnectionsBorrowLatency": _CLIENT,
    "DatabaseConnectionsCurrentlyBorrowed": _DATABASE,
    "DatabaseConnectionsCurrentlyInTransaction": _DATABASE,
    "DatabaseConnectionsCurrentlySessionPinned": _DATABASE,
    "DatabaseConnectionsSetupFailed": _DATABASE,
    "DatabaseConnectionsSetupSucceeded": _DATABASE,
    "MaxDatabaseConnectionsAllowed": _DATABASE,
    "QueryDatabaseResponseLatency": _ALL,
    "QueryRequests": _CLIENT,
    "QueryRequestsNoTLS": _CLIENT,
    "QueryRequestsTLS": _CLIENT,
    "QueryResponseLatency": _CLIENT,
}
MICROSECONDS = {
    "DatabaseConnectionsBorrowLatency",
    "QueryDatabaseResponseLatency",
    "QueryResponseLatency",
}


class ProxyMetrics:
    """One proxy's metrics: `count` and `latency` on the request path, `gauges` each second."""

    def __init__(self, publisher: MetricPublisher, store: MetricStore, proxy: str) -> None:
        self.publisher, self.store = publisher, store
        self.proxy = proxy
        self.target = ""  # the writer instance's identifier, once a target is registered

    def dimensions(self, name: str) -> list[dict[str, str]]:
        """The dimension sets of one metric for this proxy."""
        found = []
        for key in SETS[name]:
            if key == "D1":
                found.append({"ProxyName": self.proxy})
            elif key == "D2":
                found.append({"ProxyName": self.proxy, "EndpointName": ENDPOINT})
            elif key == "D3" and self.target:
                found.append(
                    {"ProxyName": self.proxy, "TargetGroup": TARGET_GROUP, "Target": self.target}
                )
            elif key == "D4":
                found.append(
                    {
                        "ProxyName": self.proxy,
                        "TargetGroup": TARGET_GROUP,
                        "TargetRole": TARGET_ROLE,
                    }
                )
        return found

    def count(self, name: str, value: float = 1.0) -> None:
        """Add to a counted metric."""
        for dims in self.dimensions(name):
            self.publisher.record(NAMESPACE, name, value, dims, "Count")

    def latency(self, name: str, seconds: float) -> None:
        """One latency sample, in microseconds as AWS publishes them."""
        for dims in self.dimensions(name):
            self.publisher.record(NAMESPACE, name, seconds * 1e6, dims, "Microseconds")

    def query(self, tls: bool, database_seconds: float | None, total_seconds: float | None) -> None:
        """One query's counts and latencies, expanded into data points off the request path."""
        self.publisher.record_with(
            NAMESPACE, self._query_points, (tls, database_seconds, total_seconds)
        )

    def _query_points(
        self, tls: bool, database_seconds: float | None, total_seconds: float | None
    ) -> list[DataPoint]:
        points: list[DataPoint] = []
        for name in ("QueryRequests", "QueryRequestsTLS" if tls else "QueryRequestsNoTLS"):
            points += [(name, dims, 1.0, "Count") for dims in self.dimensions(name)]
        for name, seconds in (
            ("QueryDatabaseResponseLatency", database_seconds),
            ("QueryResponseLatency", total_seconds),
        ):
            if seconds is not None:
                value = seconds * 1e6
                points += [(name, dims, value, "Microseconds") for dims in self.dimensions(name)]
        return points

    def gauges(self, values: Mapping[str, float]) -> None:
        """The current values of the connection gauges, written to the store now."""
        for name, value in values.items():
            for dims in self.dimensions(name):
                self.store.put(NAMESPACE, name, value, dimensions=dims, unit="Count")
