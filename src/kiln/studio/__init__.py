"""Kiln's studio: a web UI over a workspace (``kiln studio``), server-rendered, reading through ``kiln.sdk``.

Imported only by ``kiln studio`` (and tests): the other commands never pay for Starlette and Jinja2.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from kiln.studio.app import create_app

        return create_app
    raise AttributeError(name)
