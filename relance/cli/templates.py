"""``relance templates …``: see a message as a contact would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from relance.cli.run import reported
from relance.templates.sms_length import sms_length

templates_app = typer.Typer(help="Message templates: preview them.", no_args_is_help=True)


@templates_app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(help="Template name, e.g. referral/post_purchase_invite.")],
    channel: Annotated[str, typer.Option(help="email or sms.")] = "email",
    templates: Annotated[Path | None, typer.Option(help="Templates directory.")] = None,
    locale: Annotated[str | None, typer.Option(help="Contact locale, e.g. fr or fr-CA.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="JSON file merged over the sample data (contact, event, …).")
    ] = None,
) -> None:
    """Render a template with sample data (or yours) and print every part."""
    # pydantic-settings and Jinja2: not loaded for --help.
    from relance.core.settings import get_settings
    from relance.templates.engine import TemplateStore, sample_context

    context = sample_context(channel=channel)
    if data is not None:
        try:
            overrides = json.loads(data.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            typer.echo(f"{data}: {error}", err=True)
            raise typer.Exit(2) from None
        for key, value in overrides.items():
            context[key] = {**context.get(key, {}), **value} if isinstance(value, dict) else value
    store = TemplateStore(templates or get_settings().templates_dir)
    with reported():  # a broken template: one line naming its file
        rendered = store.render(name, channel, context, locale=locale)
    if channel == "sms":
        typer.echo(rendered.text)
        typer.echo(f"-- {sms_length(rendered.text)}")
        return
    typer.echo(f"Subject: {rendered.subject}\n\n{rendered.text}")
    if rendered.html is not None:
        typer.echo(f"\n-- HTML part --\n{rendered.html}")
