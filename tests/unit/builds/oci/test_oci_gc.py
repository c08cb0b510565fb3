"""Images in the cache's OCI layout under garbage collection: blobs shared between images stay while a kept
image names them, a collection racing an image build never removes a blob the build is about to name, and a
writer killed mid-blob leaves nothing half-written visible.

The images are written by the real writer from environment folders made here in a venv's shape (a
``pyvenv.cfg``, ``bin/python``, one ``dist-info`` with its ``RECORD`` per package)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiln.builds.cache import BuildCache
from kiln.builds.gc import prune
from kiln.builds.oci.gc import image_blobs
from kiln.builds.oci.store import list_images, remove_image
from kiln.builds.oci.writer import OciImage, write_image

LOCK = "io.kiln.lock-hash"


def make_env(root: Path, packages: dict[str, bytes]) -> Path:
    site = root / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to("/usr/bin/python3.12")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.12.1\n")
    for name, body in packages.items():
        (site / name).mkdir()
        (site / name / "__init__.py").write_bytes(body)
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return root


def image(layout: Path, env: Path, lock: str, **kw: object) -> OciImage:
    return write_image(env_dir=env, name=f"kiln/kiln_{lock}", tag=lock[:16], python_version="3.12.1",
                       labels={LOCK: lock}, variables={}, layout=layout, **kw)  # type: ignore[arg-type]


def blob_files(layout: Path) -> dict[str, int]:
    folder = layout / "blobs" / "sha256"
    return {f"sha256:{p.name}": p.stat().st_size for p in folder.iterdir()}


def complete(layout: Path, digest: str) -> bool:
    """Every blob of the image is there and is what its name says."""
    for blob in image_blobs(layout, digest):
        path = layout / "blobs" / "sha256" / blob.removeprefix("sha256:")
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            return False
    return True


@pytest.fixture
def cache(tmp_path: Path) -> BuildCache:
    return BuildCache(tmp_path / "cache")


@pytest.fixture
def two(cache: BuildCache, tmp_path: Path) -> tuple[OciImage, OciImage]:
    """Images ``a`` (packages alpha, common) and ``b`` (beta, common): the common layer is shared."""
    layout = cache.root / "images-v1"
    common = os.urandom(4096)
    a = image(layout, make_env(tmp_path / "a", {"alpha": os.urandom(8192), "common": common}), "a" * 64)
    b = image(layout, make_env(tmp_path / "b", {"beta": os.urandom(8192), "common": common}), "b" * 64)
    os.utime(layout / "blobs" / "sha256" / a.digest[7:], (1000, 1000))  # a: the least recently written
    return a, b


def test_a_removed_image_frees_only_the_blobs_no_kept_image_names(cache: BuildCache,
                                                                  two: tuple[OciImage, OciImage]) -> None:
    a, b = two
    layout = cache.root / "images-v1"
    shared = image_blobs(layout, a.digest) & image_blobs(layout, b.digest)
    assert shared, "the common package's layer is one blob of both images"
    only_a = image_blobs(layout, a.digest) - shared
    before = blob_files(layout)
    preview = prune(cache, references={"b" * 64}, dry_run=True)
    assert blob_files(layout) == before and [i.reference for i in list_images(layout)] == [a.reference, b.reference]
    result = prune(cache, references={"b" * 64})
    for r in (preview, result):
        assert [i["reference"] for i in r.removed_images] == [a.reference] and r.kept_images == 1
        assert r.freed == sum(before[x] for x in only_a) and r.size_before == sum(before.values())
    assert [i.reference for i in list_images(layout)] == [b.reference] and complete(layout, b.digest)
    assert set(blob_files(layout)) == image_blobs(layout, b.digest)
    notes = [n.read_text().split()[0] for n in (layout / "kiln-diff-ids").iterdir()]
    assert set(notes) <= image_blobs(layout, b.digest)  # the writer's memory of removed layers went with them
    assert result.size_after == sum(blob_files(layout).values())


def test_max_size_removes_least_recently_written_images_first_and_referenced_ones_never(
        cache: BuildCache, two: tuple[OciImage, OciImage]) -> None:
    a, b = two
    layout = cache.root / "images-v1"
    total = sum(blob_files(layout).values())
    result = prune(cache, references=set(), max_size=total - 1)  # one image's going is enough: the older one
    assert [i["reference"] for i in result.removed_images] == [a.reference] and result.size_after <= total - 1
    assert prune(cache, references={"b" * 64}, max_size=0).removed_images == []
    assert complete(layout, b.digest)
    assert [i["reference"] for i in prune(cache, references=set()).removed_images] == [b.reference]
    assert blob_files(layout) == {} and list_images(layout) == []


def test_kiln_image_rm_keeps_shared_blobs_too(cache: BuildCache, two: tuple[OciImage, OciImage]) -> None:
    a, b = two
    layout = cache.root / "images-v1"
    _, freed = remove_image(layout, a.reference)
    assert freed > 0 and complete(layout, b.digest) and set(blob_files(layout)) == image_blobs(layout, b.digest)


def test_a_collection_waits_for_an_image_being_written(cache: BuildCache, tmp_path: Path) -> None:
    layout = cache.root / "images-v1"
    kept = image(layout, make_env(tmp_path / "k", {"kept": os.urandom(1024)}), "k" * 64)  # the layout has an index
    env = make_env(tmp_path / "e", {"alpha": os.urandom(8192), "beta": os.urandom(8192)})
    first_layer, go = threading.Event(), threading.Event()
    written: list[OciImage] = []

    def pause(line: str) -> None:
        if line.startswith("layer ") and "alpha" in line:  # its own layer written, not yet named by the index
            first_layer.set()
            assert go.wait(30)

    writer = threading.Thread(target=lambda: written.append(image(layout, env, "c" * 64, log=pause)))
    writer.start()
    try:
        assert first_layer.wait(30)
        # the blobs written so far (layers are compressed side by side: another layer may still be a temp file)
        named = {f"sha256:{p.name}" for p in (layout / "blobs" / "sha256").iterdir() if not p.name.startswith(".")}
        pending = named - image_blobs(layout, kept.digest)
        assert pending, "a blob of the new image is written, and no image names it yet"
        results = []
        collector = threading.Thread(target=lambda: results.append(prune(cache, references={"c" * 64, "k" * 64})))
        collector.start()
        collector.join(timeout=0.5)  # it waits for the writer: were it not to, it would remove the unnamed blob now
    finally:
        go.set()
    writer.join(30)
    collector.join(30)
    assert not writer.is_alive() and not collector.is_alive() and results and written
    assert pending <= image_blobs(layout, written[0].digest) and complete(layout, written[0].digest)
    assert results[0].removed_images == [] and results[0].orphans == 0


def test_concurrent_writers_keep_every_image_in_the_index(cache: BuildCache, tmp_path: Path) -> None:
    layout = cache.root / "images-v1"
    envs = [make_env(tmp_path / f"e{n}", {f"p{n}": os.urandom(2048)}) for n in range(4)]
    threads = [threading.Thread(target=image, args=(layout, env, f"{n}" * 64)) for n, env in enumerate(envs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(i.labels[LOCK] for i in list_images(layout)) == [f"{n}" * 64 for n in range(4)]


WRITER = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_oci_gc import image
image(Path(sys.argv[1]), Path(sys.argv[2]), "d" * 64)
"""


def test_a_writer_killed_mid_blob_leaves_no_half_blob_and_the_next_collection_clears_it(
        cache: BuildCache, two: tuple[OciImage, OciImage], tmp_path: Path) -> None:
    a, b = two
    layout = cache.root / "images-v1"
    big = make_env(tmp_path / "big", {"heavy": os.urandom(48 << 20)})  # incompressible: a long write
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(layout), str(big), str(Path(__file__).parent)])
    folder = layout / "blobs" / "sha256"
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".layer-") and p.stat().st_size > 0 for p in folder.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the writer ended before its big layer"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    temps = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert temps, "killed while a blob was being written"
    for path in folder.iterdir():  # what is visible under a digest's name is that digest's content
        if not path.name.startswith("."):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    assert [i.reference for i in list_images(layout)] == [a.reference, b.reference]
    left = sum(p.stat().st_size for p in temps)
    result = prune(cache, references={"a" * 64, "b" * 64})
    assert result.removed_images == [] and result.freed >= left
    assert not any(p.name.startswith(".") for p in folder.iterdir())
    assert complete(layout, a.digest) and complete(layout, b.digest)
    assert json.loads((layout / "index.json").read_text())["manifests"]
