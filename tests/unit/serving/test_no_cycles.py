"""No import loops inside ``kiln.serving``: for every direct import a -> b between its modules, no chain of
imports leads from b back to a (imports under TYPE_CHECKING and inside functions count too)."""

from __future__ import annotations

import grimp


def test_no_module_of_serving_imports_its_way_back() -> None:
    graph = grimp.build_graph("kiln")
    serving = {m for m in graph.modules if m == "kiln.serving" or m.startswith("kiln.serving.")}
    assert {"kiln.serving.model", "kiln.serving.deploy", "kiln.serving.webservice", "kiln.serving.protocol"} <= serving
    imports = [(a, b) for a in sorted(serving) for b in sorted(graph.find_modules_directly_imported_by(a))
               if b in serving]
    assert ("kiln.serving.model", "kiln.serving.deploy") in imports  # the graph sees imports inside functions
    loops = [f"{a} -> {b} -> ... -> {a}" for a, b in imports if graph.chain_exists(importer=b, imported=a)]
    assert loops == []
