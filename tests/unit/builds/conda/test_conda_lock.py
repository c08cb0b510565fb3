"""Locks with conda packages: the JSON round trip, what the lock hash covers, diffs that name conda packages."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kiln.builds.lock import CondaPackage, Lock, LockChange, LockedPackage, diff_locks

CHANNEL = "file:///srv/channels/local/"
DATA = CondaPackage(name="datapkg", version="1.0", build="0", channel=CHANNEL, subdir="noarch",
                    url=CHANNEL + "noarch/datapkg-1.0-0.conda", sha256="c" * 64)
HELLO = CondaPackage(name="hellokiln", version="0.1", build="pyh_0", channel=CHANNEL, subdir="noarch",
                     url=CHANNEL + "noarch/hellokiln-0.1-pyh_0.tar.bz2", sha256="1" * 64)
PYTHON = CondaPackage(name="python", version="3.12.1", build="kiln_0",
                      channel="file:///cache/channels/kiln-interpreters/", subdir="linux-64",
                      url="file:///cache/channels/kiln-interpreters/linux-64/python-3.12.1-kiln_0.tar.bz2",
                      sha256=None)
SIX = LockedPackage("six", "1.16.0", None, ("sha256:" + "1" * 64, "sha256:" + "8" * 64))
RATTLER_LOCK = "version: 6\nenvironments:\n  default:\n    channels:\n    - url: file:///srv/channels/local/\n"


def make_lock(**changes: object) -> Lock:
    lock = Lock(identity="e" * 64, python="3.12.1", platform="linux-x86_64", requirements=("six==1.16.0",),
                options=(), packages=(SIX,), text="six==1.16.0 \\\n    --hash=sha256:" + "1" * 64 + "\n",
                resolver="uv 0.13.9", created_at="2026-01-02T03:04:05+00:00", indexes=("https://pypi.org/simple",),
                conda=(DATA, HELLO, PYTHON), conda_lock=RATTLER_LOCK, conda_platform="linux-64",
                python_source="kiln", conda_via="conda")
    return dataclasses.replace(lock, **changes)


def test_a_lock_with_conda_packages_survives_json() -> None:
    lock = make_lock()
    again = Lock.from_json(lock.to_json())
    assert again == lock
    assert again.lock_hash == lock.lock_hash
    data = json.loads(lock.to_json())
    assert data["conda"][0] == {"name": "datapkg", "version": "1.0", "build": "0", "channel": CHANNEL,
                                "subdir": "noarch", "url": CHANNEL + "noarch/datapkg-1.0-0.conda",
                                "sha256": "c" * 64}
    assert data["conda"][2]["sha256"] is None
    assert (data["conda_lock"], data["conda_platform"], data["python_source"], data["conda_via"]) == (
        RATTLER_LOCK, "linux-64", "kiln", "conda")
    assert data["lock_hash"] == lock.lock_hash


def test_a_lock_written_before_conda_reads_with_empty_conda_fields() -> None:
    data = json.loads(make_lock(conda=(), conda_lock="", conda_platform="", python_source="", conda_via="").to_json())
    for key in ("conda", "conda_lock", "conda_platform", "python_source", "conda_via"):
        del data[key]
    lock = Lock.from_json(json.dumps(data))
    assert (lock.conda, lock.conda_lock, lock.conda_platform, lock.python_source, lock.conda_via) == ((), "", "", "",
                                                                                                      "")


def test_the_summary_counts_both_kinds() -> None:
    assert make_lock().summary == "3 conda packages + 1 pip package"
    assert make_lock(conda=()).summary == "1 package"


@pytest.mark.parametrize("conda", [
    (dataclasses.replace(DATA, version="2.0"), HELLO, PYTHON),
    (dataclasses.replace(DATA, build="1"), HELLO, PYTHON),
    (dataclasses.replace(DATA, sha256="d" * 64), HELLO, PYTHON),
    (DATA, HELLO, dataclasses.replace(PYTHON, url=PYTHON.url.replace("3.12.1", "3.12.2"))),  # no sha256: the URL
    (DATA, HELLO),
    (DATA, HELLO, PYTHON, dataclasses.replace(DATA, name="extra")),
    (),
])
def test_the_lock_hash_covers_the_conda_records(conda: tuple[CondaPackage, ...]) -> None:
    assert make_lock(conda=conda).lock_hash != make_lock().lock_hash


@pytest.mark.parametrize("changes", [
    {"conda": (PYTHON, HELLO, DATA)},  # order
    {"conda": (dataclasses.replace(DATA, channel="https://mirror.example.org/local/",
                                   url="https://mirror.example.org/local/noarch/datapkg-1.0-0.conda"), HELLO, PYTHON)},
    {"conda_lock": RATTLER_LOCK + "# another text of the same records\n"},
    {"conda_via": "pypi"},
    {"python_source": "conda"},
    {"created_at": "2030-01-01T00:00:00+00:00"},
])
def test_the_lock_hash_ignores_what_does_not_change_the_files(changes: dict[str, object]) -> None:
    assert make_lock(**changes).lock_hash == make_lock().lock_hash


def test_the_pip_packages_still_count() -> None:
    assert make_lock(packages=()).lock_hash != make_lock().lock_hash


def test_diff_names_conda_packages() -> None:
    new = make_lock(conda=(dataclasses.replace(DATA, version="2.0"), PYTHON,
                           dataclasses.replace(HELLO, name="prefixpkg")))
    assert [str(c) for c in diff_locks(make_lock(), new)] == [
        "~ conda:datapkg 1.0=0 -> 2.0=0", "- conda:hellokiln 0.1=pyh_0", "+ conda:prefixpkg 0.1=pyh_0"]
    assert diff_locks(make_lock(), make_lock()) == []
    assert diff_locks(None, make_lock(packages=(), conda=(DATA,))) == [LockChange("conda:datapkg", None, "1.0=0")]
