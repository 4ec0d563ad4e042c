"""AWS/ElastiCache metrics of a serverless cache, from its Redis server's own statistics.

Names, units and the `clusterId` dimension follow
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/serverless-metrics-events-redis.html.
Once a second the sampler reads `INFO everything` over its own TLS connection and publishes
what changed since the last reading; its own INFO command, connection and traffic are taken
out again, so the figures are the clients' alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..metrics import MetricStore

log = logging.getLogger("localcloud.elasticache")

NAMESPACE = "AWS/ElastiCache"
DIMENSION = "clusterId"
KILOBYTE = 1024
_INFO_REQUEST_BYTES = len(b"*2\r\n$4\r\nINFO\r\n$10\r\neverything\r\n")


@dataclass
class Reading:
    """The counters of one INFO reply that the metrics are differences of."""

    hits: int = 0
    misses: int = 0
    commands: int = 0
    connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    read_calls: int = 0
    read_usec: int = 0
    write_calls: int = 0
    write_usec: int = 0
    evictions: int = 0


@dataclass
class CacheSampler:
    """Turns successive INFO replies of one cache into data points."""

    cluster_id: str
    publish: Callable[[str, float, str], None]
    read_commands: set[str]
    write_commands: set[str]
    last: Reading | None = None
    own_reply_bytes: int = 0
    own_connections: int = 0  # connections the sampler itself opened

    def sample(self, info: dict[str, Any], reply_bytes: int) -> None:
        """Publish the gauges, and the counters' change since the previous reading."""
        now = self._reading(info)
        self.publish("CurrConnections", max(0, int(info.get("connected_clients", 0)) - 1), "Count")
        keyspace = info.get("db0") or {}
        self.publish("CurrItems", int(keyspace.get("keys", 0)), "Count")
        self.publish("CurrVolatileItems", int(keyspace.get("expires", 0)), "Count")
        self.publish("BytesUsedForCache", int(info.get("used_memory_dataset", 0)), "Bytes")
        previous, self.last = self.last, now
        own_bytes_out, self.own_reply_bytes = self.own_reply_bytes, reply_bytes
        own_connections, self.own_connections = self.own_connections, 0
        if previous is None:
            return  # the baseline (its own connection included)
        hits, misses = now.hits - previous.hits, now.misses - previous.misses
        commands = now.commands - previous.commands - 1  # the previous INFO
        bytes_in = now.bytes_in - previous.bytes_in - _INFO_REQUEST_BYTES
        bytes_out = now.bytes_out - previous.bytes_out - own_bytes_out
        new_connections = now.connections - previous.connections - own_connections
        self.publish("CacheHits", hits, "Count")
        self.publish("CacheMisses", misses, "Count")
        if hits + misses:
            self.publish("CacheHitRate", 100.0 * hits / (hits + misses), "Percent")
        self.publish("TotalCmdsCount", max(0, commands), "Count")
        self.publish("NewConnections", max(0, new_connections), "Count")
        self.publish("NetworkBytesIn", max(0, bytes_in), "Bytes")
        self.publish("NetworkBytesOut", max(0, bytes_out), "Bytes")
        self.publish("Evictions", now.evictions - previous.evictions, "Count")
        # AWS: reads and writes take 1 ECPU per kilobyte transferred, at least 1 per command.
        ecpus = max(commands, (bytes_in + bytes_out) / KILOBYTE) if commands > 0 else 0
        self.publish("ElastiCacheProcessingUnits", ecpus, "Count")
        for kind, calls, usec in (
            ("Read", now.read_calls - previous.read_calls, now.read_usec - previous.read_usec),
            ("Write", now.write_calls - previous.write_calls, now.write_usec - previous.write_usec),
        ):
            if calls > 0:
                self.publish(f"Successful{kind}RequestLatency", usec / calls, "Microseconds")

    def _reading(self, info: dict[str, Any]) -> Reading:
        reading = Reading(
            hits=int(info.get("keyspace_hits", 0)),
            misses=int(info.get("keyspace_misses", 0)),
            commands=int(info.get("total_commands_processed", 0)),
            connections=int(info.get("total_connections_received", 0)),
            bytes_in=int(info.get("total_net_input_bytes", 0)),
            bytes_out=int(info.get("total_net_output_bytes", 0)),
            evictions=int(info.get("evicted_keys", 0)),
        )
        for key, stats in info.items():
            if not key.startswith("cmdstat_") or not isinstance(stats, dict):
                continue
            command = key[len("cmdstat_") :].split("|")[0]
            calls = int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))
            usec = int(stats.get("usec", 0))
            if command in self.read_commands:
                reading.read_calls += calls
                reading.read_usec += usec
            elif command in self.write_commands:
                reading.write_calls += calls
                reading.write_usec += usec
        return reading


def command_families(client: Any) -> tuple[set[str], set[str]]:
    """(read commands, write commands) by the server's own command flags."""
    reads, writes = set(), set()
    for name, details in client.command().items():
        flags = {str(f) for f in details.get("flags", [])}
        if "write" in flags:
            writes.add(str(name).lower())
        elif "readonly" in flags and "admin" not in flags:
            reads.add(str(name).lower())
    return reads, writes


def publisher_for(store: MetricStore, cluster_id: str) -> Callable[[str, float, str], None]:
    """Publish one data point now, kept to the second (the sampler runs once a second)."""
    dimensions = {DIMENSION: cluster_id}

    def publish(name: str, value: float, unit: str) -> None:
        store.put(NAMESPACE, name, value, dimensions=dimensions, unit=unit, storage_resolution=1)

    return publish


def read_info(client: Any) -> tuple[dict[str, Any], int]:
    """INFO everything, parsed, with the size of the reply on the wire."""
    from redis._parsers.helpers import parse_info

    client.set_response_callback("INFO", lambda raw, **_: raw)  # the reply as sent, unparsed
    raw = client.execute_command("INFO", "everything")
    size = len(raw) + len(f"${len(raw)}\r\n") + 2
    return parse_info(raw.decode()), size


def close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()
