"""Answers moto recomputes on every request although they cannot change while it runs.

Profiled on a DynamoDB GetItem, moto listed its own package directory 54 times per request
(to tell a service name from a host name) and walked its handler class with `inspect` once
(to find the action's method): about a third of moto's time for the call. Both depend only on
moto's installed files and classes, so they are computed once per process.
"""

from __future__ import annotations

import functools


def install() -> None:
    """Replace the two lookups with cached ones (idempotent)."""
    from moto import backends
    from moto.core import responses, utils

    if getattr(backends.list_of_moto_modules, "cached", False):
        return
    modules = frozenset(backends.list_of_moto_modules())

    def list_of_moto_modules() -> frozenset[str]:
        return modules

    list_of_moto_modules.cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules

    @functools.cache
    def method_names_from_class(clazz: object) -> frozenset[str]:
        return frozenset(utils.method_names_from_class(clazz))

    responses.method_names_from_class = method_names_from_class
