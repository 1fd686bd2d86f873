"""`ordersvc coupons ...`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ordersvc.cli_support import JsonFlag, command_group, emit, fail, in_transaction, iso, json_output, refused

coupons_app = command_group("Coupon codes.")


def _parse_expiry(text: str) -> datetime:
    """`2026-12-31` (end of that day, UTC) or an ISO 8601 time (UTC when it has no offset)."""
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(hour=23, minute=59, second=59, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"invalid --expires {text!r}: use YYYY-MM-DD or an ISO 8601 time", error="invalid_expires") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@coupons_app.command("create", context_settings={"ignore_unknown_options": True})
def coupons_create(
    code: str,
    amount: Annotated[str, typer.Argument(help="USD credited on redemption, e.g. 10")],
    max_redemptions: Annotated[int | None, typer.Option(help="Redemptions in all, across accounts.")] = None,
    expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD (end of day UTC) or ISO 8601.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a coupon CODE (case-insensitive) worth AMOUNT USD, once per account."""
    from ordersvc.coupons import service as coupons
    from ordersvc.errors import ServiceError
    from ordersvc.money import format_usd, parse_usd

    json_output(as_json)
    try:
        amount_mills = parse_usd(amount)
    except ServiceError as exc:
        raise refused(exc) from None
    expires_at = _parse_expiry(expires) if expires else None
    coupon = in_transaction(
        lambda session: coupons.create_coupon(
            session, code=code, amount_mills=amount_mills, max_redemptions=max_redemptions, expires_at=expires_at
        )
    )
    if as_json:
        emit(_coupon(coupon))
        return
    typer.echo(f"coupon {coupon.code} created: {format_usd(coupon.amount_mills)} USD")


@coupons_app.command("list")
def coupons_list(as_json: JsonFlag = False) -> None:
    """Every coupon with its redemptions and state."""
    from ordersvc.coupons import service as coupons
    from ordersvc.money import format_usd

    json_output(as_json)
    rows = in_transaction(coupons.list_coupons)
    if as_json:
        emit([{**_coupon(c), "redemptions": c.redemptions} for c in rows])
        return
    if not rows:
        typer.echo("no coupons")
    for c in rows:
        limit = "unlimited" if c.max_redemptions is None else str(c.max_redemptions)
        state = (
            "disabled" if c.disabled_at else (f"expires {c.expires_at:%Y-%m-%d %H:%M}" if c.expires_at else "active")
        )
        typer.echo(f"{c.code}\t{format_usd(c.amount_mills)} USD\t{c.redemptions}/{limit}\t{state}")


@coupons_app.command("disable")
def coupons_disable(code: str) -> None:
    """Stop a coupon from being redeemed (earlier redemptions stand)."""
    from ordersvc.coupons import service as coupons

    coupon = in_transaction(lambda session: coupons.disable_coupon(session, code=code))
    typer.echo(f"coupon {coupon.code} disabled")


def _coupon(c: Any) -> dict[str, object]:
    """A coupon (or a listed coupon) as JSON."""
    from ordersvc.money import format_usd

    return {
        "code": c.code,
        "amount": format_usd(c.amount_mills),
        "max_redemptions": c.max_redemptions,
        "expires_at": iso(c.expires_at),
        "disabled": c.disabled_at is not None,
    }
