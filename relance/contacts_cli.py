"""``relance contacts``: import contacts from CSV (C-01, C-02, C-03)."""

from __future__ import annotations

import typer

contacts_app = typer.Typer(help="Contacts: import from CSV.", no_args_is_help=True)
