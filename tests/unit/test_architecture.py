"""The layers of ARCHITECTURE.md, checked on the import graph (function-level and TYPE_CHECKING imports
included): the import-linter contracts of pyproject.toml hold, and no module is part of an import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("kiln")


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a package's __init__ may name what its modules define; a module importing its own package is not a loop
            if module.startswith(imported + ".") or imported.startswith(module + "."):
                continue
            if graph.chain_exists(importer=imported, imported=module):
                cycles.add(" <-> ".join(sorted((module, imported))))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


@pytest.mark.parametrize("lower, higher", [
    ("kiln.environment", "kiln.workspace"), ("kiln.workspace", "kiln.builds"), ("kiln.builds", "kiln.runs"),
    ("kiln.builds", "kiln.serving"), ("kiln.runs", "kiln.serving"), ("kiln.serving", "kiln.runs"),
    ("kiln.runs", "kiln.sdk"), ("kiln.serving", "kiln.sdk"), ("kiln.sdk", "kiln.cli"),
])
def test_lower_layers_never_import_higher_ones(graph: grimp.ImportGraph, lower: str, higher: str) -> None:
    chains = graph.find_shortest_chains(importer=lower, imported=higher, as_packages=True)
    assert not chains, f"{lower} reaches {higher}: " + "; ".join(" -> ".join(c) for c in chains)
