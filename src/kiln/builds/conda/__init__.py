"""Conda packages for real: solved and installed with py-rattler (in a child process), pip on top with uv."""
