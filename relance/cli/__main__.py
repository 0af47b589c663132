"""``python -m relance.cli.app``: the same as the ``relance`` command."""

from relance.cli.app import app

app(prog_name="relance")
