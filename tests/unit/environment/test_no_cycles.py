"""No import loop inside ``kiln.environment`` (imports under ``TYPE_CHECKING`` count too)."""

from __future__ import annotations

import grimp


def test_no_import_cycle_inside_environment() -> None:
    graph = grimp.build_graph("kiln")
    inside = sorted(m for m in graph.modules if m.startswith("kiln.environment"))
    assert "kiln.environment.environment" in inside  # the graph is the real one
    loops = [f"{a} -> {b} -> ... -> {a}" for a in inside for b in sorted(graph.find_modules_directly_imported_by(a))
             if b.startswith("kiln.environment") and graph.chain_exists(importer=b, imported=a)]
    assert loops == []
