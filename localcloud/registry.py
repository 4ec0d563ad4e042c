"""The provider registry: which course-owned provider serves which AWS operation.

A provider is one class per AWS service. Its operation methods are named exactly like the
AWS operation (`PutMetricData`) and take the parsed parameters plus a request context. The
edge asks `Registry.find(service, operation)`; a miss means the request falls through to moto.
A service package declares its provider once, in its `SERVICE` (see `services.py`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .context import CloudContext


@dataclass
class RequestContext:
    """Who is asking: region and account from the request, and the id we answer with."""

    region: str
    account_id: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Provider:
    """Base class of a course provider: serves only the operations it defines as methods."""

    service: ClassVar[str] = ""

    def __init__(self, cloud: CloudContext) -> None:
        self.cloud = cloud

    def handles(self, operation_name: str) -> bool:
        """True when this provider defines the operation (PascalCase method name)."""
        return operation_name[:1].isupper() and callable(getattr(self, operation_name, None))

    def reset(self) -> None:
        """Forget all state (the local cloud's `reset`)."""

    def shutdown(self) -> None:
        """Release processes and threads (the local cloud's `down`)."""

    def status(self) -> dict[str, Any]:
        """A small summary for `python -m localcloud status`."""
        return {}

    def endpoints(self) -> dict[str, Any]:
        """Local URLs this provider serves (load balancer listeners, APIs), for `url_for`."""
        return {}


class Registry:
    """Providers by botocore service name, with a cache of (service, operation) look-ups."""

    def __init__(self, providers: list[Provider]) -> None:
        # A service may have several providers (RDS: clusters, and proxies in their own
        # package); each operation goes to the first one that defines it.
        self._providers: dict[str, list[Provider]] = {}
        for provider in providers:
            self._providers.setdefault(provider.service, []).append(provider)
        self._all = list(providers)
        self._lookups: dict[tuple[str, str], Provider | None] = {}
        self._lock = threading.Lock()

    @property
    def services(self) -> set[str]:
        """Services with at least one provider-served operation."""
        return set(self._providers)

    def providers(self) -> list[Provider]:
        """Every registered provider."""
        return list(self._all)

    def get(self, service: str) -> Provider | None:
        """The (first) provider for a service, if any."""
        return next(iter(self._providers.get(service, ())), None)

    def find(self, service: str, operation: str) -> Provider | None:
        """The provider that serves this operation, or None for moto."""
        key = (service, operation)
        try:
            return self._lookups[key]
        except KeyError:
            candidates = self._providers.get(service, ())
            found = next((p for p in candidates if p.handles(operation)), None)
            with self._lock:
                self._lookups[key] = found
            return found
