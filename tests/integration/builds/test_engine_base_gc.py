"""A base saved from a real engine (``podman system service``) under the cache's collection: kept while an
image left in ``images-v1/`` was built on it, removed with its last image, saved again by the next build."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from engine_support import ContainerEngine
from kiln import Environment, Workspace
from kiln.builds.cache import BuildCache
from kiln.builds.engine import Engine
from kiln.builds.engine.saved import saved_bases
from kiln.builds.gc import prune
from kiln.builds.oci.build import build_image
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py


def test_a_saved_base_stays_under_its_image_and_goes_with_it(
        make_env: Callable[..., Environment], workspace: Workspace, engine_env: ContainerEngine) -> None:
    env = make_env("base-gc", "six==1.16.0")
    settings = Settings.from_env()
    cache = BuildCache(settings.cache_dir)
    with Engine(engine_env.engine_url) as engine:
        image = build_image(env, workspace, settings=settings, engine=engine)
        (base,) = saved_bases(settings.cache_dir)
        assert image.labels["org.opencontainers.image.base.digest"] == base.digest
        lock = image.labels["io.kiln.lock-hash"]
        kept = prune(cache, references={lock})
        assert kept.removed_bases == [] and kept.kept_bases == 1 and base.path.is_dir()
        gone = prune(cache, references=set())
        assert [i["reference"] for i in gone.removed_images] == [image.reference]
        assert [b["digest"] for b in gone.removed_bases] == [base.digest] and not base.path.exists()
        logs: list[str] = []
        again = build_image(env, workspace, settings=settings, engine=engine,
                            progress=lambda stage, line: logs.append(line))
        assert again.digest == image.digest and [b.digest for b in saved_bases(settings.cache_dir)] == [base.digest]
        assert any("saving" in line for line in logs)
