"""py-rattler's work, in a child process: ``python -m kiln.builds.conda.child solve|install|index``.

Why a child: py-rattler 0.26 to 0.28 (0.28 is the newest here) can crash at interpreter exit after
its work is done. Kiln's own process never imports rattler's solver or installer; this process
reads one JSON request on stdin, does the work, writes one JSON answer on stdout, flushes, and
leaves with ``os._exit`` so that the interpreter's teardown (where the crash is) never runs.

    solve    {"channels": [...], "specs": [...], "platforms": [...], "locked": LOCK_TEXT|null}
             -> {"lock": LOCK_TEXT, "records": [{name, version, build, channel, subdir, url, sha256}, ...]}
    install  {"lock": LOCK_TEXT, "platform": "linux-64", "prefix": DIR, "final_prefix": DIR, "cache_dir": DIR}
             -> {"installed": N}
    index    {"channel": DIR} -> {}
Failures answer {"error": message} and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

ENV = "default"


def _records_json(records: list[Any]) -> list[dict[str, Any]]:
    return [{"name": r.name.normalized, "version": str(r.version), "build": str(r.build), "channel": str(r.channel),
             "subdir": str(r.subdir), "url": str(r.url), "sha256": r.sha256.hex() if r.sha256 else None,
             "noarch": str(r.noarch) if r.noarch else None} for r in records]


def _lock_text(records: list[Any], channels: list[str], platform: str) -> str:
    import tempfile

    import rattler

    lock = rattler.LockFile([rattler.LockPlatform(platform)])
    for record in records:
        lock.add_conda_package(ENV, rattler.LockPlatform(platform), record)
    lock.set_channels(ENV, [rattler.LockChannel(c) for c in channels])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rattler.lock"
        lock.to_path(path)
        return path.read_text()


def _records_of(lock_text: str, platform: str) -> list[Any]:
    import tempfile

    import rattler

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rattler.lock"
        path.write_text(lock_text)
        lock = rattler.LockFile.from_path(path)
    env = lock.environment(ENV)
    owned = next((p for p in lock.platforms() if str(p.name) == platform), None)  # rattler wants the lock's own
    if env is None or owned is None:
        return []
    return list(env.conda_repodata_records_for_platform(owned) or [])


async def _solve(req: dict[str, Any]) -> dict[str, Any]:
    import rattler

    platform = req["platforms"][0]
    locked = _records_of(req["locked"], platform) if req.get("locked") else None
    # sharded repodata off: py-rattler 0.28 fails on a "304 Not Modified" answer for the shards index
    gateway = rattler.Gateway(default_config=rattler.SourceConfig(sharded_enabled=False))
    records = await rattler.solve(sources=req["channels"], specs=req["specs"], platforms=req["platforms"],
                                  locked_packages=locked or None, channel_priority=rattler.ChannelPriority.Strict,
                                  gateway=gateway)
    return {"lock": _lock_text(records, req["channels"], platform), "records": _records_json(records)}


async def _install(req: dict[str, Any]) -> dict[str, Any]:
    import rattler

    records = _records_of(req["lock"], req["platform"])
    standin = req.get("standin")
    if standin:  # Kiln's stand-in python lives in this machine's cache: the lock may name another one's path
        records = [_moved(r, standin) if r.name.normalized == "python" and str(r.build) == "kiln_0" else r
                   for r in records]
    await rattler.install(records, Path(req["prefix"]), cache_dir=Path(req["cache_dir"]), show_progress=False,
                          alternative_target_prefix=Path(req["final_prefix"]), execute_link_scripts=False)
    return {"installed": len(records)}


def _moved(record: Any, url: str) -> Any:
    import rattler

    return rattler.RepoDataRecord(record, url.rsplit("/", 1)[-1], url, url.rsplit("/", 2)[0] + "/")


async def _index(req: dict[str, Any]) -> dict[str, Any]:
    from rattler import index

    await index.index_fs(Path(req["channel"]), force=True)
    return {}


def main() -> None:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    handlers = {"solve": _solve, "install": _install, "index": _index}
    code = 0
    try:
        request = json.loads(sys.stdin.read())
        if action not in handlers:
            raise ValueError(f"unknown action {action!r}")
        answer = asyncio.run(handlers[action](request))
    except Exception as e:
        answer = {"error": f"{type(e).__name__}: {e}"}
        code = 1
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: see the module docstring


if __name__ == "__main__":
    main()
