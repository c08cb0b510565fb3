"""Conda package names to PyPI names, from the ``conda-pypi`` package's map (grayskull's, ~12k entries).

``conda-pypi`` itself can't be installed with its dependencies (it needs conda), so Kiln fetches its
wheel alone, once (``uv pip install --no-deps --target``), reads the JSON file it ships, and keeps the
inverted map in its cache: ``<cache>/conda-pypi-map-v1.json``.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from kiln._files import write_text_atomic
from kiln.builds.uv import run_uv
from kiln.errors import KilnError

__all__ = ["CONDA_PYPI", "NoPyPIEquivalent", "conda_to_pypi", "load_map"]

CONDA_PYPI = "conda-pypi==0.13.1"
_FILE = "conda_pypi/grayskull_pypi_mapping.json"


class NoPyPIEquivalent(KilnError):
    """A conda package that no PyPI project corresponds to."""


def load_map(cache_dir: Path) -> dict[str, str]:
    """conda name → PyPI name."""
    cached = cache_dir / "conda-pypi-map-v1.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    with tempfile.TemporaryDirectory(prefix="kiln-conda-pypi-") as tmp:
        run_uv(["pip", "install", "--no-config", "--no-deps", "--quiet", "--target", tmp, CONDA_PYPI],
               what=f"fetching the conda to PyPI name map ({CONDA_PYPI})")
        source = Path(tmp) / _FILE
        if not source.is_file():
            raise KilnError(f"{CONDA_PYPI} has no {_FILE}: its layout changed")
        data = json.loads(source.read_text())
    mapping = {str(e["conda_name"]).lower(): str(e["pypi_name"]) for e in data.values()
               if e.get("conda_name") and e.get("pypi_name")}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cached, json.dumps(mapping, sort_keys=True))
    return mapping


#: conda packages that are not Python projects: no PyPI name stands for them
NOT_ON_PYPI = re.compile(r"^(lib.*|.*-(ng|devel|dev|cos\d+.*)|_.*|gcc.*|gxx.*|clang.*|openssl|zlib|xz|bzip2|"
                         r"ncurses|readline|sqlite|tk|ca-certificates|cudatoolkit|cuda-.*|mkl.*|openblas|blas)$")


def conda_to_pypi(name: str, mapping: dict[str, str]) -> str:
    """The map's PyPI name; else the same name (as conda-pypi does: most projects share it), except for
    conda packages that are not Python projects at all (libraries, compilers), which are an error."""
    pypi = mapping.get(name.lower())
    if pypi is not None:
        return pypi
    if NOT_ON_PYPI.match(name.lower()):
        raise NoPyPIEquivalent(f"conda package {name!r} has no PyPI equivalent (it is not a Python project): "
                               "build it from conda channels (not --conda-via=pypi), or list a pip requirement "
                               "instead")
    return name
