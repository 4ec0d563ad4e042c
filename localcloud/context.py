"""What a provider is given: the shared parts of the local cloud, typed.

The daemon builds one `CloudContext` and hands it to every provider. A provider reaches moto,
the metric store, the logs writer, the engines and the other providers only through it, so
what a provider depends on is visible in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .engines import EngineManager
from .metrics import MetricPublisher, MetricStore
from .motogateway import LogsWriter, MotoGateway
from .timing import METRIC_INGESTION_S, TimingProfile, timing_profile

P = TypeVar("P")


class Providers:
    """The running providers, looked up by class (typed) rather than by name."""

    def __init__(self) -> None:
        self._by_class: dict[type, Any] = {}

    def add(self, provider: Any, as_class: type | None = None) -> None:
        """Make a provider reachable by its class (or by `as_class`, for a stand-in)."""
        self._by_class[as_class or type(provider)] = provider

    def get(self, cls: type[P]) -> P:
        """The running provider of this class (KeyError if the daemon has none)."""
        try:
            return self._by_class[cls]
        except KeyError:
            raise KeyError(f"no running {cls.__name__}") from None

    def all(self) -> list[Any]:
        """Every running provider, in registration order."""
        return list(self._by_class.values())


Address = tuple[str, int]


class Addresses:
    """Where an AWS-side address (a task's private IP and port) is reachable on loopback.

    A service that gives resources private addresses (ECS tasks) adds a resolver; a service
    that connects to such addresses (the ALB) asks here, so neither imports the other.
    """

    def __init__(self) -> None:
        self._resolvers: list[Callable[[str, int], Address | None]] = []

    def add_resolver(self, resolver: Callable[[str, int], Address | None]) -> None:
        """Register a function from (private IP, port) to a loopback address, or None."""
        self._resolvers.append(resolver)

    def resolve(self, ip: str, port: int) -> Address | None:
        """The loopback address of (ip, port), if a service knows it."""
        for resolver in self._resolvers:
            found = resolver(ip, port)
            if found is not None:
                return found
        return None


@dataclass
class CloudContext:
    """The local cloud as its providers see it."""

    state_dir: Path
    endpoint_url: str
    moto: MotoGateway
    engines: EngineManager
    metrics: MetricStore = field(default_factory=MetricStore)
    providers: Providers = field(default_factory=Providers)
    addresses: Addresses = field(default_factory=Addresses)
    timing: TimingProfile = field(default_factory=timing_profile)
    publisher: MetricPublisher = field(init=False)

    def __post_init__(self) -> None:
        self.publisher = MetricPublisher(self.metrics)
        self.metrics.ingestion_delay = self.timing.delay(METRIC_INGESTION_S)

    @property
    def logs(self) -> LogsWriter:
        """Log events into moto's CloudWatch Logs."""
        return self.moto.logs
