"""Answers moto recomputes on every request although they cannot change while it runs.

Profiled on a DynamoDB GetItem, moto listed its own package directory 54 times per request
(to tell a service name from a host name) and walked its handler class with `inspect` once
(to find the action's method): about a third of moto's time for the call. Both depend only on
moto's installed files and classes, so they are computed once per process.

And one import is left out: jsonschema, which moto's API Gateway imports (through
openapi-spec-validator, for imported OpenAPI documents), registers checkers for the `iri`
formats by importing rfc3987_syntax, which builds a parser as it is imported: 1.1 of the
1.3 s the first API Gateway call of a new daemon took (a course teardown makes one). Of the
OpenAPI meta-schemas only OpenAPI 3.2's uses `iri`, a version API Gateway does not import.
"""

from __future__ import annotations

import functools
import sys


def install() -> None:
    """Replace the two lookups with cached ones and keep rfc3987_syntax out (idempotent)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError
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
