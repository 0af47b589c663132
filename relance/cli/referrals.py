"""``relance referrals``: operators follow and decide referrals (same rules as ``/v1/referrals``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from relance.cli.run import with_relance

if TYPE_CHECKING:
    from relance.referrals.service import Referrals
    from relance.starter.facade import Relance

referrals_app = typer.Typer(
    help="Referrals: where one stands, reject one, a sponsor's code.", no_args_is_help=True
)


def _run(work: Callable[[Referrals], Awaitable[Any]]) -> Any:
    async def main(relance: Relance) -> Any:
        return await work(relance.referrals)

    return with_relance(main)


@referrals_app.command("show")
def show(referral_id: str) -> None:
    """A referral's status, order and the messages sent, as JSON."""
    state = _run(lambda r: r.state(referral_id))
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@referrals_app.command("reject")
def reject(
    referral_id: str, reason: Annotated[str, typer.Option(help="Why; the sponsor is told it failed.")]
) -> None:
    """Reject (abandon) a referral before it is validated; the sponsor is invited to refer again."""
    state = _run(lambda r: r.reject(referral_id, reason))
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@referrals_app.command("code")
def code(sponsor: Annotated[str, typer.Argument(help="The sponsor's external id.")]) -> None:
    """The sponsor's referral code (made on first use): a purchase with it reconciles their referral."""
    print(_run(lambda r: r.code_for(sponsor)))
