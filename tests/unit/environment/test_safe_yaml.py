"""The one YAML reader: aliases measured before use, depth bounded, errors one line naming the file."""

from __future__ import annotations

import pytest

from kiln.environment.limits import MAX_NODES
from kiln.environment.safe_yaml import load_yaml
from kiln.errors import FormatError


def chain(levels: int, width: int = 9) -> str:
    lines = ["- &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"- &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("round_trip", [False, True])
def test_a_modest_use_of_anchors_loads(round_trip: bool) -> None:
    data = load_yaml("base: &b [numpy, scipy]\nother: *b\n", "f.yml", round_trip=round_trip)
    assert list(data["other"]) == ["numpy", "scipy"]


@pytest.mark.parametrize("round_trip", [False, True])
@pytest.mark.parametrize("levels", [6, 9, 30])
def test_an_alias_bomb_is_refused_before_it_expands(round_trip: bool, levels: int) -> None:
    with pytest.raises(FormatError) as info:
        load_yaml(chain(levels), "bomb.yml", round_trip=round_trip)
    message = str(info.value)
    assert message.startswith("bomb.yml: line ") and f"beyond {MAX_NODES} values" in message
    assert len(message) < 300 and "\n" not in message


def test_the_limit_counts_expanded_values_not_aliases() -> None:
    # 5 levels of 9: 9**5 = 59,049 strings and a few thousand lists, under the limit: loads
    assert len(load_yaml(chain(5), "ok.yml")) == 5
    with pytest.raises(FormatError):
        load_yaml(chain(6), "big.yml")  # 531,441: refused


def test_a_cycle_is_refused() -> None:
    with pytest.raises(FormatError, match="cycle"):
        load_yaml("a: &x [1, *x]\n", "c.yml")


@pytest.mark.parametrize("text", ["a: " + "[" * 100_000 + "]" * 100_000 + "\n",
                                  "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n"])
def test_deep_nesting_is_refused(text: str) -> None:
    with pytest.raises(FormatError, match="nested more than 32 levels"):
        load_yaml(text, "deep.yml")


def test_duplicate_keys_and_binary_are_refused() -> None:
    with pytest.raises(FormatError, match="duplicate key"):
        load_yaml("a: 1\na: 2\n", "d.yml")
    with pytest.raises(FormatError, match="binary"):
        load_yaml("a: 1\x00\n", "b.yml")


def test_a_reused_anchor_name_is_not_a_warning() -> None:
    # warnings are errors in the tests: the composer's ReusedAnchorWarning must not fire
    assert load_yaml("a: &x 1\nb: &x 2\nc: *x\n", "r.yml") == {"a": 1, "b": 2, "c": 2}
