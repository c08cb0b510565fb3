from __future__ import annotations

import pytest

from kiln.environment.curated import curated_names, get_curated, list_curated
from kiln.environment.pip_requirements import parse_pip_requirement

KILN_NAMES = [n for n in curated_names() if n.startswith("Kiln-")]


def test_at_least_six_under_the_reserved_prefix() -> None:
    names = KILN_NAMES
    assert len(names) >= 6
    assert all(n.startswith(("Kiln-", "AzureML-")) for n in curated_names())
    for kind in ("minimal", "sklearn", "lightgbm", "pytorch", "tensorflow", "inference"):
        assert any(kind in n for n in names), kind


@pytest.mark.parametrize("name", KILN_NAMES)
def test_every_curated_package_is_pinned(name: str) -> None:
    env = get_curated(name)
    assert env is not None and env.version == "1"
    cd = env.python.conda_dependencies
    assert cd is not None and cd.get_python_version() == "3.11"
    for spec in cd.pip_packages:
        assert str(parse_pip_requirement(spec).specifier).startswith("=="), spec


def test_each_get_is_a_fresh_copy() -> None:
    a = get_curated("Kiln-minimal-py311")
    b = get_curated("kiln-minimal-py311")
    assert a is not None and b is not None and a is not b
    assert a.python.conda_dependencies is not None
    a.python.conda_dependencies.add_pip_package("six")
    assert list_curated()["Kiln-minimal-py311"].hash == b.hash != a.hash
    assert get_curated("Kiln-minimal-py311", version="2") is None
