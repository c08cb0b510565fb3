"""No import loop inside ``kiln.runs``: a module never reaches, through its imports, a module importing it.

grimp sees every import (at the top, inside functions, under ``TYPE_CHECKING``), as import-linter does.
"""

from __future__ import annotations

import grimp


def loops(package: str) -> list[tuple[str, str]]:
    graph = grimp.build_graph("kiln")
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    found = []
    for importer in sorted(modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & modules):
            if graph.chain_exists(importer=imported, imported=importer):
                found.append((importer, imported))
    return found


def test_the_check_sees_the_imports_of_runs() -> None:
    graph = grimp.build_graph("kiln")
    assert "kiln.runs.targets.interface" in graph.find_modules_directly_imported_by("kiln.runs.targets.local")
    assert graph.chain_exists(importer="kiln.runs.supervisor", imported="kiln.runs.layout")


def test_no_module_of_runs_imports_one_that_imports_it() -> None:
    assert loops("kiln.runs") == []
