"""OCI images written from a locked build, without a daemon (see ``kiln.builds.oci.writer``)."""

from __future__ import annotations

__all__: list[str] = []
