"""Many small distributions share layers (one per first letter); large ones keep their own."""

from __future__ import annotations

from kiln.builds.oci.content import Group, group_small
from kiln.builds.oci.layer import Entry


def _group(title: str, size: int) -> Group:
    return Group(title, [Entry(f"kiln/env/{title}", "file", data=b"x" * size)])


def test_few_packages_keep_a_layer_each() -> None:
    groups = [_group("environment", 1), _group("a 1", 10), _group("b 1", 10)]
    assert group_small(groups, limit=2) == groups


def test_above_the_limit_small_packages_share_a_layer_per_letter() -> None:
    groups = [_group("environment", 1), _group("aa 1", 10), _group("ab 1", 10), _group("big 1", 100),
              _group("bz 1", 10)]
    out = group_small(groups, limit=3, small=50)
    assert [g.title for g in out] == ["environment", "a*: aa 1, ab 1", "b*: bz 1", "big 1"]
    assert [e.name for e in out[1].entries] == ["kiln/env/aa 1", "kiln/env/ab 1"]
    # one more small package changes only its letter's layer
    more = group_small([*groups, _group("bb 1", 10)], limit=3, small=50)
    assert [g.title for g in more] == ["environment", "a*: aa 1, ab 1", "b*: bb 1, bz 1", "big 1"]
