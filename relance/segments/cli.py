"""``relance segments``: count, show and snapshot segments."""

from __future__ import annotations

import typer

segments_app = typer.Typer(help="Dynamic segments: count, show, snapshot into a list.", no_args_is_help=True)
