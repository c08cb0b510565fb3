"""Saved base images (``<cache>/bases-v1/``) under the cache's accounting and collection: a base stays while an
image left in ``images-v1/`` was built on it, goes least recently used first otherwise, never under a build
about to stack on it, and what a killed save left goes with the next collection.

The bases are OCI layouts written here by hand in the shape ``kiln.builds.engine.base`` saves (uncompressed
layers, the folder named by the config's digest); the images on them are written by Kiln's real writer."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kiln.builds.cache import BuildCache
from kiln.builds.engine.base import base_from_engine
from kiln.builds.engine.saved import saved_bases, using_bases
from kiln.builds.gc import prune
from kiln.builds.oci.base import read_base
from kiln.builds.oci.store import list_images, remove_image
from kiln.builds.oci.writer import OciImage, write_image

LOCK = "io.kiln.lock-hash"


def _blob(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}"


def save_base(cache: BuildCache, name: str, payload: bytes, *, last_used: float = 1000.0) -> Path:
    """A base saved as ``base_from_engine`` leaves it: one uncompressed layer holding ``payload``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("etc/base.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = buffer.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
                         "history": [{"created_by": name}]}).encode()
    folder = cache.root / "bases-v1" / hashlib.sha256(config).hexdigest()
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer_digest, config_digest = _blob(blobs, layer), _blob(blobs, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": layer_digest, "size": len(layer)}]}).encode()
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _blob(blobs, manifest),
        "size": len(manifest), "annotations": {"io.containerd.image.name": name,
                                               "org.opencontainers.image.ref.name": name}}]}))
    os.utime(folder / "index.json", (last_used, last_used))
    return folder


def make_env(root: Path, body: bytes) -> Path:
    site = root / "lib" / "python3.12" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to("/usr/bin/python3.12")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.12.1\n")
    (site / "pkg" / "__init__.py").write_bytes(body)
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("pkg/__init__.py,,\npkg-1.0.dist-info/METADATA,,\npkg-1.0.dist-info/RECORD,,\n")
    return root


def image_on(cache: BuildCache, base: Path | None, env: Path, lock: str, *, written: float = 2000.0,
             **kw: Any) -> OciImage:
    layout = cache.root / "images-v1"
    out = write_image(env_dir=env, name=f"kiln/kiln_{lock[:8]}", tag=lock[:16], python_version="3.12.1",
                      labels={LOCK: lock}, variables={}, layout=layout,
                      base=read_base(base) if base is not None else None, **kw)
    os.utime(layout / "blobs" / "sha256" / out.digest[7:], (written, written))
    return out


@pytest.fixture
def cache(tmp_path: Path) -> BuildCache:
    return BuildCache(tmp_path / "cache")


def names(cache: BuildCache) -> list[str]:
    return [b.name for b in saved_bases(cache.root)]


def test_a_base_no_image_was_built_on_is_counted_and_pruned(cache: BuildCache) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(20000))
    (saved,) = saved_bases(cache.root)
    assert saved.name == "python:3.12-slim" and saved.path == base and saved.size > 20000
    result = prune(cache, references=set())
    assert [b["name"] for b in result.removed_bases] == ["python:3.12-slim"]
    assert result.freed >= saved.size and result.size_before >= saved.size and result.size_after == 0
    assert not base.exists() and names(cache) == []


def test_a_base_stays_while_a_kept_image_was_built_on_it(cache: BuildCache, tmp_path: Path) -> None:
    used = save_base(cache, "python:3.12-slim", os.urandom(20000))
    unused = save_base(cache, "ubuntu:22.04", os.urandom(20000))
    image_on(cache, used, make_env(tmp_path / "e", b"x = 1\n"), "a" * 64)
    result = prune(cache, references={"a" * 64})
    assert [b["name"] for b in result.removed_bases] == ["ubuntu:22.04"] and result.kept_bases == 1
    assert used.is_dir() and not unused.exists()
    assert read_base(used).digest == list_images(cache.root / "images-v1")[0].labels[
        "org.opencontainers.image.base.digest"]


def test_a_base_goes_with_the_last_image_built_on_it(cache: BuildCache, tmp_path: Path) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(20000), last_used=1000)
    image_on(cache, base, make_env(tmp_path / "e", b"x = 1\n"), "a" * 64, written=3000)
    result = prune(cache, references=set())
    assert [i["reference"] for i in result.removed_images] == [f"kiln/kiln_{'a' * 8}:{'a' * 16}"]
    assert [b["name"] for b in result.removed_bases] == ["python:3.12-slim"] and not base.exists()
    assert list_images(cache.root / "images-v1") == []


def test_max_size_removes_the_least_recently_used_base_first(cache: BuildCache) -> None:
    old = save_base(cache, "old:1", os.urandom(30000), last_used=1000)
    new = save_base(cache, "new:1", os.urandom(30000), last_used=5000)
    sizes = {b.name: b.size for b in saved_bases(cache.root)}
    result = prune(cache, references=set(), max_size=sizes["new:1"] + 100)
    assert [b["name"] for b in result.removed_bases] == ["old:1"] and result.kept_bases == 1
    assert not old.exists() and new.is_dir()
    assert result.size_after == sizes["new:1"]


def test_a_recent_image_on_an_old_base_keeps_its_place_in_line(cache: BuildCache, tmp_path: Path) -> None:
    """A base's turn is its images' last write when later than its own last use: with room for one image and
    its base, the idle newer base goes before the older base under a recent image."""
    under = save_base(cache, "under:1", os.urandom(30000), last_used=1000)
    idle = save_base(cache, "idle:1", os.urandom(30000), last_used=2000)
    made = image_on(cache, under, make_env(tmp_path / "e", b"x = 1\n"), "a" * 64, written=9000)
    room = made_size(cache, made) + next(b.size for b in saved_bases(cache.root) if b.name == "under:1")
    result = prune(cache, references=set(), max_size=room)
    assert [b["name"] for b in result.removed_bases] == ["idle:1"] and result.removed_images == []
    assert under.is_dir() and not idle.exists()


def made_size(cache: BuildCache, made: OciImage) -> int:
    folder = cache.root / "images-v1" / "blobs" / "sha256"
    return sum(p.stat().st_size for p in folder.iterdir())


def test_dry_run_reports_the_same_and_removes_nothing(cache: BuildCache) -> None:
    save_base(cache, "old:1", os.urandom(30000), last_used=1000)
    save_base(cache, "new:1", os.urandom(30000), last_used=5000)
    limit = max(b.size for b in saved_bases(cache.root)) + 100  # room for one
    preview = prune(cache, references=set(), max_size=limit, dry_run=True)
    assert [b["name"] for b in preview.removed_bases] == ["old:1"] and sorted(names(cache)) == ["new:1", "old:1"]
    actual = prune(cache, references=set(), max_size=limit)
    assert preview.removed_bases == actual.removed_bases and [b["name"] for b in actual.removed_bases] == ["old:1"]
    assert preview.freed == actual.freed and preview.size_after == actual.size_after


def test_what_a_killed_save_left_goes_with_the_next_collection(cache: BuildCache) -> None:
    kept = save_base(cache, "python:3.12-slim", os.urandom(1000))
    staging = cache.root / "bases-v1" / ".save-k1lled"
    (staging / "blobs" / "sha256").mkdir(parents=True)
    (staging / "blobs" / "sha256" / ".layer.tmp").write_bytes(os.urandom(5000))
    (staging / "save.tar").write_bytes(os.urandom(7000))
    assert names(cache) == ["python:3.12-slim"]  # an unfinished save is never taken for a base
    preview = prune(cache, references=set(), max_size=10**9, dry_run=True)
    assert preview.base_leftovers == 12000 and preview.freed == 12000 and staging.is_dir()
    result = prune(cache, references=set(), max_size=10**9)
    assert result.base_leftovers == 12000 and result.removed_bases == [] and result.kept_bases == 1
    assert not staging.exists() and kept.is_dir()


def test_kiln_image_rm_keeps_the_base(cache: BuildCache, tmp_path: Path) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(20000))
    made = image_on(cache, base, make_env(tmp_path / "e", b"x = 1\n"), "a" * 64)
    remove_image(cache.root / "images-v1", f"{made.name}:{made.tag}")
    assert list_images(cache.root / "images-v1") == [] and names(cache) == ["python:3.12-slim"]
    assert read_base(base).layers  # still whole: the next build stacks on it without the engine


def test_a_collection_waits_for_a_build_about_to_stack_on_a_base(cache: BuildCache, tmp_path: Path) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(20000))
    env = make_env(tmp_path / "e", b"x = 1\n")
    results = []
    collector = threading.Thread(target=lambda: results.append(prune(cache, references={"a" * 64})))
    with using_bases(cache.root):  # what a build holds from taking its base to its image's index entry
        taken = read_base(base)
        collector.start()
        collector.join(timeout=0.5)  # it waits: were it not to, it would remove the base no image names yet
        out = write_image(env_dir=env, name="kiln/kiln_a", tag="a" * 16, python_version="3.12.1",
                          labels={LOCK: "a" * 64}, variables={}, layout=cache.root / "images-v1", base=taken)
    collector.join(30)
    assert not collector.is_alive() and results
    assert results[0].removed_bases == [] and results[0].kept_bases == 1 and base.is_dir()
    assert out.labels["org.opencontainers.image.base.digest"] == taken.digest


class _Engine:
    """An engine that already has the image: ``base_from_engine`` takes the saved base, no pull, no save."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id

    def has(self, reference: str) -> bool:
        return True

    def image(self, reference: str) -> SimpleNamespace:
        return SimpleNamespace(id=f"sha256:{self.image_id}", platform="linux/amd64")


def test_taking_a_saved_base_is_its_last_use(cache: BuildCache) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(1000), last_used=1000)
    taken = base_from_engine(_Engine(base.name), "python:3.12-slim", cache_dir=cache.root)  # type: ignore[arg-type]
    assert taken.name == "python:3.12-slim"
    assert saved_bases(cache.root)[0].last_used > 1000


def test_a_layer_hardlinked_from_a_base_into_the_images_is_counted_once(cache: BuildCache, tmp_path: Path) -> None:
    base = save_base(cache, "python:3.12-slim", os.urandom(50000))
    image_on(cache, base, make_env(tmp_path / "e", b"x = 1\n"), "a" * 64)
    files = [*(cache.root / "images-v1" / "blobs" / "sha256").iterdir(), *base.rglob("*")]
    unique = {(p.stat().st_dev, p.stat().st_ino): p.stat().st_size for p in files if p.is_file()}
    assert len(unique) < len([p for p in files if p.is_file()]), "the base's layer is hardlinked into the images"
    result = prune(cache, references=set())
    assert result.removed_bases and result.removed_images and not base.exists()
    assert result.freed == result.size_before == sum(unique.values())


_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
from types import SimpleNamespace
from kiln.builds.engine.base import base_from_engine

class Engine:
    def has(self, reference): return True
    def image(self, reference): return SimpleNamespace(id="sha256:" + "c" * 64, platform="linux/amd64")
    def save(self, reference, path):
        path.write_bytes(os.urandom(3000))  # half the engine's tar, then the build is killed
        os.kill(os.getpid(), signal.SIGKILL)

base_from_engine(Engine(), "python:3.12-slim", cache_dir=Path(sys.argv[1]))
"""


def test_a_save_killed_midway_leaves_no_base_and_the_next_collection_clears_it(cache: BuildCache) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(cache.root)], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    left = [p for p in (cache.root / "bases-v1").iterdir() if p.name.startswith(".save-")]
    assert left and saved_bases(cache.root) == []  # never taken for a base
    result = prune(cache, references=set())  # the killed build's lock went with it: this doesn't wait
    assert result.base_leftovers == 3000 and result.removed_bases == []
    assert [p.name for p in (cache.root / "bases-v1").iterdir()] == ["kiln-locks"]
