"""``holds_exactly``: when a first build's install already is the lock, the build skips ``uv pip sync``.

It must answer True only when the venv's distributions are the lock's names and versions and nothing
else; anything it can't be sure of answers False, so that uv decides.
"""

from __future__ import annotations

from pathlib import Path

from kiln.builds.backends.venv import holds_exactly
from kiln.builds.lock import Lock, packages_from_requirements


def lock_of(text: str) -> Lock:
    return Lock(identity="i", python="3.11.7", platform="linux-x86_64", requirements=(), options=(),
                packages=packages_from_requirements(text), text=text, resolver="uv", created_at="")


def venv_with(tmp_path: Path, *folders: str) -> Path:
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "_virtualenv.py").write_text("")
    (site / "_virtualenv.pth").write_text("import _virtualenv\n")
    for folder in folders:
        (site / folder).mkdir()
    return tmp_path / "env"


LOCK = lock_of("scikit-learn==1.9.1 --hash=sha256:aa\nnumpy==2.4.6 --hash=sha256:bb\n")


def test_the_same_names_and_versions_hold_exactly(tmp_path: Path) -> None:
    env = venv_with(tmp_path, "scikit_learn-1.9.1.dist-info", "numpy-2.4.6.dist-info", "numpy", "sklearn")
    assert holds_exactly(env, LOCK)


def test_an_extra_package_a_missing_one_or_another_version_do_not(tmp_path: Path) -> None:
    extra = venv_with(tmp_path / "a", "scikit_learn-1.9.1.dist-info", "numpy-2.4.6.dist-info", "six-1.16.0.dist-info")
    missing = venv_with(tmp_path / "b", "numpy-2.4.6.dist-info")
    other = venv_with(tmp_path / "c", "scikit_learn-1.9.1.dist-info", "numpy-2.4.5.dist-info")
    assert not holds_exactly(extra, LOCK)
    assert not holds_exactly(missing, LOCK)
    assert not holds_exactly(other, LOCK)


def test_what_it_cannot_be_sure_of_is_left_to_uv(tmp_path: Path) -> None:
    legacy = venv_with(tmp_path / "a", "scikit_learn-1.9.1.dist-info", "numpy-2.4.6.dist-info", "old.egg-info")
    assert not holds_exactly(legacy, LOCK)
    by_url = lock_of("kilnprobe @ file:///wheels/kilnprobe-1.0-py3-none-any.whl --hash=sha256:cc\n")
    assert not holds_exactly(venv_with(tmp_path / "b", "kilnprobe-1.0.dist-info"), by_url)
    assert not holds_exactly(tmp_path / "no-venv-here", LOCK)
