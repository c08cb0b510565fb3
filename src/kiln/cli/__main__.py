"""``python -m kiln.cli``: the same as the ``kiln`` command."""

from kiln.cli.entry import main

main()
