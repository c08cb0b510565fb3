"""The SDK layer: the Azure-shaped actions that cross Kiln's layers, composed from the packages below.

A lower object offers a higher action (``env.build(ws)``, ``run.register_model(...)``) by asking the
workspace it is given; ``kiln.Workspace`` (``kiln.sdk.workspace.Workspace``) is the workspace that
can answer, so no package below this one imports a higher one.
"""
