"""``python -m relance``: the same as the ``relance`` command."""

from relance.cli.app import app

app(prog_name="relance")
