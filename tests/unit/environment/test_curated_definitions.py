"""The curated environments' stored canonical definitions (``definitions.json``) are what ``_make`` builds
from ``environments.json``. After changing ``environments.json``, regenerate them:

    .venv/bin/python tests/unit/environment/test_curated_definitions.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiln.environment import curated

DEFINITIONS = Path(curated.__file__).with_name("definitions.json")


def computed() -> dict[str, Any]:
    found = {}
    for name, item in sorted(curated._data().items()):
        env = curated._make(item)
        found[name] = {"definition": env.to_dict(), "definition_text": env.definition_text(), "hash": env.hash}
    return found


def test_stored_definitions_are_the_computed_ones() -> None:
    assert json.loads(DEFINITIONS.read_text(encoding="utf-8")) == computed(), \
        "regenerate: .venv/bin/python tests/unit/environment/test_curated_definitions.py"


@pytest.mark.parametrize("name", ["Kiln-minimal-py311", "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu"])
def test_a_curated_environment_needs_no_spec_parser(name: str) -> None:
    code = (f"import sys; from kiln.environment.curated import get_curated; env = get_curated({name!r}); "
            "from kiln.builds.locking import python_is_defaulted; python_is_defaulted(env); "
            "env.hash; print(sorted(m for m in ('rattler', 'ruamel.yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


def test_curated_environments_have_their_computed_hash() -> None:
    for name, item in curated._data().items():
        env = curated.get_curated(name)
        assert env is not None and env.hash == curated._make(item).hash
        env.python.conda_dependencies.add_pip_package("six")  # type: ignore[union-attr]
        assert env.hash != curated._make(item).hash  # a changed copy is hashed again


if __name__ == "__main__":
    DEFINITIONS.write_text(json.dumps(computed(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {DEFINITIONS}")
