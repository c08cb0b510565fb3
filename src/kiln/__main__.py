"""``python -m kiln``: the same as the ``kiln`` command."""

from kiln.cli.main import main

main()
