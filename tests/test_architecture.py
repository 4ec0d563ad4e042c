"""The two packages keep their shape: no import cycle between any two files.

The import contracts in pyproject.toml (run by `make lint`) keep the direction between the
packages and between siblings; this test also catches the cycles they do not look at, such as
a package's `__init__` and one of its own modules importing each other.
"""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(
        "helpers", "localcloud", exclude_type_checking_imports=False, cache_dir=None
    )
    assert {"helpers.lab", "localcloud.edge"} <= graph.modules  # the packages were read
    assert _cycles(graph) == []


def test_cycle_finder_sees_a_package_and_its_module_importing_each_other():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.child", "pkg.other"):
        graph.add_module(module)
    graph.add_import(importer="pkg", imported="pkg.child")
    graph.add_import(importer="pkg.child", imported="pkg")
    graph.add_import(importer="pkg.other", imported="pkg.child")
    assert _cycles(graph) == [["pkg", "pkg.child"]]
