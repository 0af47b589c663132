"""``python -m relance``: the same as the ``relance`` command."""

from relance.cli.app import main

main()
