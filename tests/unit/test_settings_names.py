"""Every ``KILN_*`` environment variable is named once, in ``kiln.settings``; the stdlib-only modules that run
inside users' environments keep copies, which must be the same names."""

from __future__ import annotations

import re
from pathlib import Path

import kiln
from kiln import settings

SRC = Path(kiln.__file__).parent
#: run inside users' environments with the standard library only: they can't import kiln.settings
STANDALONE = ("run.py", "serving/protocol.py", "serving/shim/kiln_model_path.py")
NAMES = {value for key, value in vars(settings).items() if key.startswith("ENV_")}


def test_the_names_are_distinct_kiln_names() -> None:
    constants = {key: value for key, value in vars(settings).items() if key.startswith("ENV_")}
    assert len(set(constants.values())) == len(constants)
    assert all(re.fullmatch(r"KILN_[A-Z_]+", v) for v in constants.values())
    assert set(constants) <= set(settings.__all__)


def test_no_kiln_name_is_spelled_out_in_kilns_own_code() -> None:
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel == "settings.py" or rel in STANDALONE:
            continue
        literals = re.findall(r"""["'](KILN_[A-Z_]+)["']""", path.read_text(encoding="utf-8"))
        if literals:
            found[rel] = literals
    assert found == {}


def test_the_standalone_copies_are_the_same_names() -> None:
    for rel in STANDALONE:
        literals = set(re.findall(r"""["'](KILN_[A-Z_]+)["']""", (SRC / rel).read_text(encoding="utf-8")))
        assert literals and literals <= NAMES, (rel, literals - NAMES)


def test_debug_is_one_rule() -> None:
    on = [v for v in ("1", "yes", "true", "on", "2") if settings.debug_enabled({settings.ENV_DEBUG: v})]
    off = [v for v in ("", "0", "false", "no", "NO", " 0 ") if not settings.debug_enabled({settings.ENV_DEBUG: v})]
    assert (len(on), len(off)) == (5, 6)
    home = {settings.ENV_HOME: "/tmp/x"}
    assert settings.Settings.from_env({**home, settings.ENV_DEBUG: "yes"}).debug is True
    assert settings.Settings.from_env({**home, settings.ENV_DEBUG: "no"}).debug is False
