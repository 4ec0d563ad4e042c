"""What the service modules declare about themselves, collected by walking the package.

A service module lists what it adds next to its own code, in module-level lists:
`RESOURCE_KINDS` (how teardown finds and deletes its resources, see `helpers.cleanup`) and
`URL_RESOLVERS` (how `lab.url_for` reaches what it creates, see `helpers.lab`). A new
service module is found by being in the package: no list of module names to update.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType
from typing import Any

PACKAGE = __name__.rpartition(".")[0]


@functools.cache
def modules() -> tuple[ModuleType, ...]:
    """Every module of the helpers package (subpackages included), imported, sorted by name."""
    package = importlib.import_module(PACKAGE)
    names = sorted(
        info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}.")
    )
    return tuple(importlib.import_module(name) for name in names)


def declared(attribute: str) -> list[Any]:
    """The items of every module's `attribute` list, in module order, each object once."""
    items: list[Any] = []
    for module in modules():
        for item in getattr(module, attribute, ()):
            # A package that re-exported a child's list would otherwise count it twice.
            if not any(item is seen for seen in items):
                items.append(item)
    return items
