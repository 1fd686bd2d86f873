"""`ordersvc deposits ...` and `ordersvc bonus ...`: the operator's side of money in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.cli_support import fail, in_transaction
from ordersvc.deposits import service as deposits
from ordersvc.errors import ServiceError
from ordersvc.money import format_usd, parse_usd

deposits_app = typer.Typer(help="Crypto deposits: address pool, unmatched deposits.", no_args_is_help=True)
bonus_app = typer.Typer(help="Deposit bonus tiers.", no_args_is_help=True)


@deposits_app.command("import-addresses")
def import_addresses(network: str, file: Path) -> None:
    """Add the addresses in FILE (one per line) to NETWORK's pool; known ones are skipped."""
    try:
        parsed_network = deposits.parse_network(network)
        lines = file.read_text().splitlines()
    except ServiceError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    added = in_transaction(lambda session: deposits.import_addresses(session, network=parsed_network, addresses=lines))
    typer.echo(f"{added} addresses added to the {parsed_network.value} pool")


@deposits_app.command("unmatched")
def unmatched() -> None:
    """Deposits whose address no account owns, waiting for `deposits assign`."""
    rows = in_transaction(deposits.unmatched_deposits)
    if not rows:
        typer.echo("no unmatched deposits")
    for d in rows:
        typer.echo(
            f"{d.id}\t{d.processor}\t{format_usd(d.amount_mills)} USD\t{d.network or '-'}\t{d.address or '-'}"
            f"\t{d.tx_hash or '-'}\t{d.created_at:%Y-%m-%d %H:%M:%S}"
        )


@deposits_app.command("assign")
def assign(deposit_id: int, email: str) -> None:
    """Credit the unmatched deposit DEPOSIT_ID (with its bonus) to the account with EMAIL."""

    async def work(session: AsyncSession) -> tuple[int, int]:
        deposit = await deposits.assign_unmatched(session, deposit_id=deposit_id, email=email)
        return deposit.amount_mills, deposit.bonus_mills

    amount, bonus = in_transaction(work)
    typer.echo(f"deposit {deposit_id} credited to {email}: {format_usd(amount)} USD + bonus {format_usd(bonus)} USD")


@bonus_app.command("set", context_settings={"ignore_unknown_options": True})
def bonus_set(
    threshold: Annotated[str, typer.Argument(help="USD, e.g. 100")],
    percent: Annotated[str, typer.Argument(help="e.g. 5% or 2.5%")],
) -> None:
    """Deposits of at least THRESHOLD USD earn PERCENT (replaces the tier at that threshold)."""
    try:
        threshold_mills, basis_points = parse_usd(threshold), deposits.parse_percent(percent)
    except ServiceError as exc:
        raise fail(exc.message) from None
    tier = in_transaction(
        lambda session: deposits.set_bonus_tier(session, threshold_mills=threshold_mills, basis_points=basis_points)
    )
    typer.echo(f"bonus tier: {format_usd(tier.threshold_mills)} USD -> {deposits.format_percent(tier.basis_points)}%")


@bonus_app.command("list")
def bonus_list() -> None:
    """The tiers, lowest threshold first."""
    tiers = in_transaction(deposits.list_bonus_tiers)
    if not tiers:
        typer.echo("no bonus tiers")
    for tier in tiers:
        typer.echo(f"{format_usd(tier.threshold_mills)} USD\t{deposits.format_percent(tier.basis_points)}%")


@bonus_app.command("remove", context_settings={"ignore_unknown_options": True})
def bonus_remove(threshold: Annotated[str, typer.Argument(help="USD, as set")]) -> None:
    """Remove the tier at THRESHOLD USD."""
    try:
        threshold_mills = parse_usd(threshold)
    except ServiceError as exc:
        raise fail(exc.message) from None
    in_transaction(lambda session: deposits.remove_bonus_tier(session, threshold_mills=threshold_mills))
    typer.echo(f"bonus tier at {format_usd(threshold_mills)} USD removed")
