"""Counts in words: the plural rule of Kiln's output (no "1 builds")."""

from __future__ import annotations

from kiln._words import count


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert [count(n, "build") for n in (0, 1, 2)] == ["0 builds", "1 build", "2 builds"]


def test_an_irregular_plural() -> None:
    assert (count(1, "entry", "entries"), count(3, "entry", "entries")) == ("1 entry", "3 entries")


def test_a_lock_summary_counts_in_words() -> None:
    from kiln.builds.lock import Lock, LockedPackage

    def lock(*names: str) -> Lock:
        return Lock(identity="x", python="3.11", platform="linux", requirements=(), options=(),
                    packages=tuple(LockedPackage(n, "1.0") for n in names), text="", resolver="uv", created_at="")

    assert (lock("six").summary, lock("six", "idna").summary) == ("1 package", "2 packages")
