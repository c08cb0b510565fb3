"""Text for command results on the hot paths (``env build``, ``env python``): no rich here, nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.environment.limits import cut

if TYPE_CHECKING:
    from kiln.builds.builder import BuildResult

__all__ = ["build_text", "parse_ref", "python_output"]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME[:VERSION]`` → (name, version or None). ``latest`` means None; ``NAME:`` is an error. Whether
    the version is a number is the registry's check (ASCII digits only: ``"٢".isdigit()`` is true)."""
    name, sep, version = ref.rpartition(":")
    if not sep:
        return ref, None
    from kiln.cli.failures import UsageError

    if not name:
        raise UsageError(f"{cut(ref)!r}: expected NAME or NAME:VERSION")
    if version == "latest":
        return name, None
    if not version:  # "NAME:" is a typo more often than a wish for the latest
        raise UsageError(f"{cut(ref)!r}: no version after ':' (write NAME for the latest, or NAME:VERSION)")
    return name, version


def build_text(result: BuildResult, *, upgrade: bool = False) -> str:
    lines = [f"{result.environment}: {'cache hit' if result.cache_hit else 'built'} "
             f"({result.backend}, {result.seconds:.2f} s)",
             f"  python       {result.python}  (Python {result.python_version})"]
    if result.path is not None:
        lines.append(f"  environment  {result.path}")
    if result.lock is not None:
        lines.append(f"  lock         {result.lock.lock_hash[:12]}  ({result.lock.summary})")
    if upgrade:
        if result.lock_changes:
            lines += ["  upgrade:", *(f"    {c}" for c in result.lock_changes)]
        else:
            lines.append("  upgrade: no newer versions")
    return "\n".join(lines)


def python_output(result: BuildResult) -> tuple[dict[str, Any], str]:
    return {"python": str(result.python), "version": result.python_version}, str(result.python)
