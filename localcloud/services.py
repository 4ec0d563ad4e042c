"""The services of the local cloud, each declared once, next to its own code.

A service package (or module) of `localcloud` declares `SERVICE = Service(...)`: the botocore
service name, the provider class that serves some of its operations (None when moto serves
all of them), and the operations the course relies on with notes for the coverage page.
`all_services()` finds every declaration by walking the package, so adding a service is one
declaration in the new service's own package and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import Provider


@dataclass(frozen=True)
class Service:
    """One AWS service as the local cloud offers it."""

    name: str  # botocore's service name, e.g. "rds-data"
    provider: type[Provider] | None = None
    # The operations the course calls, with what it relies on when moto serves them.
    operations: dict[str, str] = field(default_factory=dict)


def all_services() -> list[Service]:
    """Every declared service, sorted by name."""
    import localcloud

    found: list[Service] = []
    for module in pkgutil.iter_modules(localcloud.__path__):
        if module.name.startswith("_"):
            continue
        imported = importlib.import_module(f"localcloud.{module.name}")
        declared = getattr(imported, "SERVICE", None)
        if isinstance(declared, Service):
            found.append(declared)
        found += [s for s in getattr(imported, "SERVICES", ()) if isinstance(s, Service)]
    return sorted(found, key=lambda service: service.name)


def provider_classes() -> list[type[Provider]]:
    """The providers of every declared service."""
    return [s.provider for s in all_services() if s.provider is not None]
