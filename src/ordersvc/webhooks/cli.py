"""`ordersvc webhooks`: the webhook sender on its own (as `serve` runs it in the background)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import database_url, settings_or_fail, stop_on_signals, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


def webhooks_command(
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
    beside_serve: Annotated[
        bool, typer.Option("--beside-serve", hidden=True, help="Started by serve: lower priority, ends with it.")
    ] = False,
) -> None:
    """Send customers' webhook deliveries: dispatch new events, send what is due in order per
    endpoint, retry failures with backoff; runs until interrupted. Any number may run beside
    `serve` (set ORDERSVC_WEBHOOKS_IN_SERVE=false to send from these alone)."""
    from ordersvc.keyring import keyring
    from ordersvc.webhooks import sender

    if beside_serve:
        from ordersvc.ops.background import lower_priority_and_follow_parent

        lower_priority_and_follow_parent()
    url = database_url()
    settings = settings_or_fail()

    async def main(maker: async_sessionmaker[AsyncSession]) -> None:
        if once:
            client = sender.Sender(allow_loopback=settings.webhooks_allow_loopback)
            sent = await sender.run_round(maker, settings, keyring(settings), client)
            typer.echo(f"{sent} deliveries succeeded")
            return
        await sender.run(maker, settings, stop_on_signals())

    with_database(url, settings, main)
