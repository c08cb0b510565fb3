"""Lock documents: the lock hash, JSON round trips, reading uv's locked requirements, diffs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from kiln.builds.lock import LOCK_FORMAT, Lock, LockChange, LockedPackage, diff_locks, packages_from_requirements
from kiln.errors import KilnError

SIX = LockedPackage("six", "1.16.0", "https://files.pythonhosted.org/six-1.16.0-py2.py3-none-any.whl",
                    ("sha256:" + "1" * 64, "sha256:" + "8" * 64))
ATTRS = LockedPackage("attrs", "23.1.0", None, ("sha256:" + "a" * 64,))
IDNA = LockedPackage("idna", "3.7", None, ("sha256:" + "c" * 64,))


def make_lock(*packages: LockedPackage, **changes: object) -> Lock:
    lock = Lock(identity="f" * 64, python="3.11.7", platform="linux-x86_64", requirements=("six==1.16.0", "attrs"),
                options=(), packages=packages or (ATTRS, SIX), text="six==1.16.0\n", resolver="uv 0.13.9",
                created_at="2026-01-02T03:04:05+00:00", indexes=("https://pypi.org/simple",))
    return dataclasses.replace(lock, **changes)  # type: ignore[arg-type]


# ---- lock hash ---------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"created_at": "2030-12-31T23:59:59+00:00"},
    {"requirements": ("six", "attrs>=23")},
    {"identity": "0" * 64},
    {"options": ("--extra-index-url https://example.org/simple",)},
    {"indexes": ("https://example.org/simple",)},
    {"text": "six==1.16.0 --hash=sha256:1111\n"},
    {"resolver": "uv 9.9.9"},
    {"python": "3.11.9"},  # another patch release of the same minor
    {"packages": (SIX, ATTRS)},  # order
    {"packages": (ATTRS, dataclasses.replace(SIX, hashes=tuple(reversed(SIX.hashes)), url=None))},
], ids=lambda c: next(iter(c)))
def test_lock_hash_ignores_what_does_not_decide_the_files(changes: dict[str, object]) -> None:
    assert make_lock(**changes).lock_hash == make_lock().lock_hash


@pytest.mark.parametrize("changes", [
    {"python": "3.12.1"},
    {"platform": "linux-aarch64"},
    {"packages": (ATTRS, dataclasses.replace(SIX, version="1.17.0"))},
    {"packages": (ATTRS, dataclasses.replace(SIX, hashes=SIX.hashes[:1]))},
    {"packages": (ATTRS, SIX, IDNA)},
    {"packages": (SIX,)},
], ids=["python-minor", "platform", "version", "hashes", "added", "removed"])
def test_lock_hash_follows_what_decides_the_files(changes: dict[str, object]) -> None:
    assert make_lock(**changes).lock_hash != make_lock().lock_hash


def test_lock_hash_is_the_same_in_another_process() -> None:
    here = make_lock().lock_hash
    assert len(here) == 64 and int(here, 16) >= 0
    code = ("from kiln.builds.lock import Lock; import sys; "
            "print(Lock.from_json(sys.stdin.read()).lock_hash)")
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], input=make_lock().to_json(), capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert out.strip() == here


# ---- JSON --------------------------------------------------------------------------------------


def test_to_json_and_back() -> None:
    lock = make_lock(ATTRS, SIX, IDNA, options=("--find-links /wheels",), indexes=("https://pypi.org/simple",
                                                                                  "/wheels"))
    text = lock.to_json()
    data = json.loads(text)
    assert data["format"] == LOCK_FORMAT
    assert data["lock_hash"] == lock.lock_hash
    assert data["packages"][1] == {"name": "six", "version": "1.16.0", "url": SIX.url, "hashes": list(SIX.hashes)}
    again = Lock.from_json(text)
    assert again == lock
    assert again.to_json() == text


def test_from_json_refuses_another_format() -> None:
    data = json.loads(make_lock().to_json())
    data["format"] = "kiln-lock/99"
    with pytest.raises(KilnError, match=r"lock format 'kiln-lock/99' is not 'kiln-lock/1': upgrade Kiln"):
        Lock.from_json(json.dumps(data))


@pytest.mark.parametrize("text", [
    "{not json", json.dumps({"format": LOCK_FORMAT}),
    "[]",
])
def test_from_json_refuses_a_broken_document(text: str) -> None:
    with pytest.raises(KilnError, match=r"^a stored lock is unreadable \("):
        Lock.from_json(text)


def test_version_of_uses_normalized_names() -> None:
    lock = make_lock(LockedPackage("typing-extensions", "4.12.2"), SIX)
    assert lock.version_of("Typing_Extensions") == "4.12.2"
    assert lock.version_of("SIX") == "1.16.0"
    assert lock.version_of("numpy") is None
    assert lock.python_minor == "3.11"


# ---- the locked requirements text uv writes ------------------------------------------------------

LOCKED = """\
--index-url https://pypi.org/simple
--extra-index-url https://kiln:${TOKEN}@example.org/simple

# a comment line
attrs==23.1.0 \\
    --hash=sha256:aaaa \\
    --hash=sha256:1111
importlib-metadata==8.0.0 ; python_version < '3.10' \\
    --hash=sha256:cccc
six==1.16.0 --hash=sha256:bbbb  # via -r requirements.in
mypkg @ https://example.org/mypkg-1.0.tar.gz \\
    --hash=sha256:dddd
"""


def test_packages_from_requirements() -> None:
    assert packages_from_requirements(LOCKED) == (
        LockedPackage("attrs", "23.1.0", None, ("sha256:1111", "sha256:aaaa")),
        LockedPackage("importlib-metadata", "8.0.0", None, ("sha256:cccc",)),
        LockedPackage("mypkg", "", "https://example.org/mypkg-1.0.tar.gz", ("sha256:dddd",)),
        LockedPackage("six", "1.16.0", None, ("sha256:bbbb",)),
    )
    assert packages_from_requirements("--index-url https://pypi.org/simple\n\n") == ()


def test_packages_from_requirements_refuses_an_unpinned_line() -> None:
    with pytest.raises(KilnError, match=r"unexpected line in a locked requirements text: 'six>=1\.16'"):
        packages_from_requirements("six>=1.16\n")


# ---- diffs -------------------------------------------------------------------------------------


def test_diff_locks() -> None:
    old = make_lock(ATTRS, SIX, LockedPackage("PyYAML", "6.0.1"))
    new = make_lock(dataclasses.replace(ATTRS, version="24.2.0"), IDNA, SIX, LockedPackage("pyyaml", "6.0.1"))
    changes = diff_locks(old, new)
    assert changes == [LockChange("attrs", "23.1.0", "24.2.0"), LockChange("idna", None, "3.7")]
    assert [str(c) for c in changes] == ["~ attrs 23.1.0 -> 24.2.0", "+ idna 3.7"]
    removed = diff_locks(new, make_lock(SIX))
    assert [str(c) for c in removed] == ["- attrs 24.2.0", "- idna 3.7", "- pyyaml 6.0.1"]
    assert diff_locks(old, old) == []
    assert [str(c) for c in diff_locks(None, make_lock(ATTRS, SIX))] == ["+ attrs 23.1.0", "+ six 1.16.0"]
