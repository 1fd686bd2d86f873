"""`ordersvc deposits ...` and `ordersvc bonus ...`: the operator's side of money in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import (
    JsonFlag,
    command_group,
    emit,
    fail,
    in_transaction,
    iso,
    json_output,
    refused,
    settings_or_fail,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ordersvc.deposits.models import Deposit, DepositAddressRelease

deposits_app = command_group("Crypto deposits: address pool, unmatched deposits.")
bonus_app = command_group("Deposit bonus tiers.")


@deposits_app.command("import-addresses")
def import_addresses(network: str, file: Path, as_json: JsonFlag = False) -> None:
    """Add the addresses in FILE (one per line) to NETWORK's pool; known ones are skipped."""
    from ordersvc.deposits import addresses
    from ordersvc.deposits import service as deposits
    from ordersvc.errors import ServiceError

    json_output(as_json)
    try:
        parsed_network = deposits.parse_network(network)
        lines = file.read_text().splitlines()
    except ServiceError as exc:
        raise refused(exc) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}", error="unreadable_file") from None
    added = in_transaction(lambda session: addresses.import_addresses(session, network=parsed_network, addresses=lines))
    if as_json:
        emit({"network": parsed_network.value, "added": added})
        return
    typer.echo(f"{added} addresses added to the {parsed_network.value} pool")


RecycleDays = Annotated[
    int | None, typer.Option("--days", help="Recycle period in days (default: ORDERSVC_DEPOSIT_ADDRESS_RECYCLE_DAYS).")
]


def _recycle_days(days: int | None) -> int:
    from ordersvc.deposits import addresses
    from ordersvc.errors import ServiceError

    chosen = settings_or_fail().deposit_address_recycle_days if days is None else days
    try:
        addresses.recycle_cutoff(chosen)
    except ServiceError as exc:
        raise refused(exc) from None
    return chosen


@deposits_app.command("pool")
def pool(days: RecycleDays = None, as_json: JsonFlag = False) -> None:
    """Per network: free addresses, assigned ones, and how many `deposits recycle` would free."""
    from ordersvc.deposits import addresses

    json_output(as_json)
    period = _recycle_days(days)
    low_water = settings_or_fail().deposit_pool_low_water
    statuses = in_transaction(lambda session: addresses.pool_status(session, days=period))
    if as_json:
        emit(
            [
                {
                    "network": s.network.value,
                    "free": s.free,
                    "assigned": s.assigned,
                    "recyclable": s.recyclable,
                    "low": s.free < low_water,
                }
                for s in statuses
            ]
        )
        return
    typer.echo("network\tfree\tassigned\trecyclable")
    for status in statuses:
        warning = "\tLOW: import more addresses" if status.free < low_water else ""
        typer.echo(f"{status.network.value}\t{status.free}\t{status.assigned}\t{status.recyclable}{warning}")


@deposits_app.command("recycle")
def recycle(days: RecycleDays = None) -> None:
    """Put back in the pool the addresses assigned more than DAYS ago that received no deposit."""
    from ordersvc.deposits import addresses

    period = _recycle_days(days)
    released = in_transaction(lambda session: addresses.recycle_unused_addresses(session, days=period))
    for release in released:
        typer.echo(f"{release.network}\t{release.address}\treleased from account {release.account_id}")
    typer.echo(f"{len(released)} addresses back in the pool (unused for {period} days)")


@deposits_app.command("unmatched")
def unmatched(as_json: JsonFlag = False) -> None:
    """Deposits whose address no account owns, waiting for `deposits assign`; an address that
    recycling took back from an account names that account (`recycled from ...`)."""
    from ordersvc.deposits import service as deposits
    from ordersvc.money import format_usd

    json_output(as_json)

    async def work(session: AsyncSession) -> tuple[list[Deposit], dict[int, DepositAddressRelease]]:
        rows = await deposits.unmatched_deposits(session)
        return rows, await deposits.former_holders(session, rows)

    rows, former = in_transaction(work)
    if as_json:
        emit(
            [
                {
                    "id": d.id,
                    "processor": d.processor,
                    "amount": format_usd(d.amount_mills),
                    "network": d.network,
                    "address": d.address,
                    "tx_hash": d.tx_hash,
                    "created_at": iso(d.created_at),
                    "recycled_from_account": former[d.id].account_id if d.id in former else None,
                }
                for d in rows
            ]
        )
        return
    if not rows:
        typer.echo("no unmatched deposits")
    for d in rows:
        assert d.id is not None
        release = former.get(d.id)
        note = f"\trecycled from account {release.account_id} on {release.released_at:%Y-%m-%d}" if release else ""
        typer.echo(
            f"{d.id}\t{d.processor}\t{format_usd(d.amount_mills)} USD\t{d.network or '-'}\t{d.address or '-'}"
            f"\t{d.tx_hash or '-'}\t{d.created_at:%Y-%m-%d %H:%M:%S}{note}"
        )


@deposits_app.command("collisions")
def collisions(as_json: JsonFlag = False) -> None:
    """Deposits that migration 0012 found to be one on-chain transfer spelt in several ways
    (hash case, `0x`): each group may have been credited more than once. Nothing was changed."""
    from ordersvc.deposits import service as deposits
    from ordersvc.money import format_usd

    json_output(as_json)
    rows = in_transaction(deposits.hash_collisions)
    if as_json:
        emit(
            [
                {
                    "canonical_hash": canonical,
                    "id": d.id,
                    "processor": d.processor,
                    "status": d.status,
                    "account_id": d.account_id,
                    "amount": format_usd(d.amount_mills),
                    "bonus": format_usd(d.bonus_mills),
                    "network": d.network,
                    "address": d.address,
                    "tx_hash": d.tx_hash,
                }
                for canonical, d in rows
            ]
        )
        return
    if not rows:
        typer.echo("no hash collisions")
    for canonical, d in rows:
        typer.echo(
            f"{canonical}\t{d.id}\t{d.processor}\t{d.status}\taccount {d.account_id or '-'}"
            f"\t{format_usd(d.amount_mills)} USD\tbonus {format_usd(d.bonus_mills)} USD\t{d.network}\t{d.address}"
            f"\t{d.tx_hash}"
        )


@deposits_app.command("assign")
def assign(deposit_id: int, email: str) -> None:
    """Credit the unmatched deposit DEPOSIT_ID (with its bonus) to the account with EMAIL (in the
    audit log, as the local operator)."""
    from ordersvc.audit.service import Actor
    from ordersvc.deposits import service as deposits
    from ordersvc.money import format_usd

    async def work(session: AsyncSession) -> tuple[int, int]:
        actor = Actor.local_operator()
        deposit = await deposits.assign_unmatched(session, deposit_id=deposit_id, email=email, actor=actor)
        return deposit.amount_mills, deposit.bonus_mills

    amount, bonus = in_transaction(work)
    typer.echo(f"deposit {deposit_id} credited to {email}: {format_usd(amount)} USD + bonus {format_usd(bonus)} USD")


@bonus_app.command("set", context_settings={"ignore_unknown_options": True})
def bonus_set(
    threshold: Annotated[str, typer.Argument(help="USD, e.g. 100")],
    percent: Annotated[str, typer.Argument(help="e.g. 5% or 2.5%")],
    as_json: JsonFlag = False,
) -> None:
    """Deposits of at least THRESHOLD USD earn PERCENT (replaces the tier at that threshold)."""
    from ordersvc.deposits import service as deposits
    from ordersvc.errors import ServiceError
    from ordersvc.money import format_usd, parse_usd

    json_output(as_json)
    try:
        threshold_mills, basis_points = parse_usd(threshold), deposits.parse_percent(percent)
    except ServiceError as exc:
        raise refused(exc) from None
    tier = in_transaction(
        lambda session: deposits.set_bonus_tier(session, threshold_mills=threshold_mills, basis_points=basis_points)
    )
    if as_json:
        emit({"threshold": format_usd(tier.threshold_mills), "percent": deposits.format_percent(tier.basis_points)})
        return
    typer.echo(f"bonus tier: {format_usd(tier.threshold_mills)} USD -> {deposits.format_percent(tier.basis_points)}%")


@bonus_app.command("list")
def bonus_list(as_json: JsonFlag = False) -> None:
    """The tiers, lowest threshold first."""
    from ordersvc.deposits import service as deposits
    from ordersvc.money import format_usd

    json_output(as_json)
    tiers = in_transaction(deposits.list_bonus_tiers)
    if as_json:
        emit(
            [
                {"threshold": format_usd(t.threshold_mills), "percent": deposits.format_percent(t.basis_points)}
                for t in tiers
            ]
        )
        return
    if not tiers:
        typer.echo("no bonus tiers")
    for tier in tiers:
        typer.echo(f"{format_usd(tier.threshold_mills)} USD\t{deposits.format_percent(tier.basis_points)}%")


@bonus_app.command("remove", context_settings={"ignore_unknown_options": True})
def bonus_remove(threshold: Annotated[str, typer.Argument(help="USD, as set")]) -> None:
    """Remove the tier at THRESHOLD USD."""
    from ordersvc.deposits import service as deposits
    from ordersvc.errors import ServiceError
    from ordersvc.money import format_usd, parse_usd

    try:
        threshold_mills = parse_usd(threshold)
    except ServiceError as exc:
        raise refused(exc) from None
    in_transaction(lambda session: deposits.remove_bonus_tier(session, threshold_mills=threshold_mills))
    typer.echo(f"bonus tier at {format_usd(threshold_mills)} USD removed")
