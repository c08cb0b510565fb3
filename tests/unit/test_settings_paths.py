"""Where the build cache is, as README's "Where data lives" says: ``$KILN_CACHE_DIR``, else ``$KILN_HOME/cache``
when ``KILN_HOME`` is set, else the user's cache folder."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from kiln.settings import Settings


def test_kiln_home_holds_the_cache_when_no_cache_dir_is_given(tmp_path: Path) -> None:
    settings = Settings.from_env({"KILN_HOME": str(tmp_path / "home")})
    assert (settings.home, settings.cache_dir) == (tmp_path / "home", tmp_path / "home" / "cache")


def test_kiln_cache_dir_wins(tmp_path: Path) -> None:
    settings = Settings.from_env({"KILN_HOME": str(tmp_path / "home"), "KILN_CACHE_DIR": str(tmp_path / "c")})
    assert settings.cache_dir == tmp_path / "c"


def test_without_either_the_users_cache_folder() -> None:
    settings = Settings.from_env({})
    assert settings.cache_dir == Path(platformdirs.user_cache_dir("kiln", appauthor=False)).resolve()
    assert settings.home == Path(platformdirs.user_data_dir("kiln", appauthor=False)).resolve()


def test_the_readme_says_so() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "default `$KILN_HOME/cache` when `KILN_HOME` is set" in readme
