"""`ordersvc suppression ...`, `ordersvc outbox list`, `ordersvc mailer`."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc import db
from ordersvc.cli_support import database_url, in_transaction
from ordersvc.config import get_settings
from ordersvc.consent import service as consent
from ordersvc.outbox import mailer
from ordersvc.outbox import service as outbox
from ordersvc.outbox.models import OutboxMessage

suppression_app = typer.Typer(help="Addresses that must never be contacted.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing consent messages.", no_args_is_help=True)


@suppression_app.command("add")
def suppression_add(email: str) -> None:
    """Suppress EMAIL for good (as its owner's opt-out does): open orders to it are canceled."""
    added = in_transaction(lambda session: consent.suppress(session, email=email))
    typer.echo(f"{email} suppressed" if added else f"{email} was already suppressed")


@suppression_app.command("remove")
def suppression_remove(email: str) -> None:
    """Lift the suppression of EMAIL (only at its owner's request)."""
    in_transaction(lambda session: consent.unsuppress(session, email=email))
    typer.echo(f"{email} removed from the suppression list")


@suppression_app.command("list")
def suppression_list() -> None:
    rows = in_transaction(consent.suppressions)
    if not rows:
        typer.echo("no suppressed addresses")
    for row in rows:
        typer.echo(f"{row.email}\t{row.source}\t{row.created_at:%Y-%m-%d %H:%M:%S}")


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    full: Annotated[bool, typer.Option("--full", help="Print each message's text.")] = False,
) -> None:
    """The newest outbox messages (with no SMTP_URL, this is where consent mail waits)."""
    render = mailer.renderer(get_settings())

    async def listing(session: AsyncSession) -> list[OutboxMessage]:
        for message_id in await outbox.unrendered(session, limit=limit):  # as the sender writes them
            await outbox.render(session, message_id, render)
        return await outbox.list_outbox(session, status=status, limit=limit)

    rows = in_transaction(listing)
    if not rows:
        typer.echo("outbox is empty")
    for m in rows:
        typer.echo(f"{m.id}\t{m.status}\t{m.to_email}\t{m.subject}\t{m.created_at:%Y-%m-%d %H:%M:%S}")
        if full:
            typer.echo(m.body_text)


def mailer_command(
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
) -> None:
    """Send due consent messages over SMTP_URL (with retries), mail held-back requests and
    expire unanswered ones; runs until interrupted."""
    url = database_url()
    settings = get_settings()

    async def main() -> None:
        engine = db.create_engine(url, settings)
        maker = db.create_sessionmaker(engine)
        try:
            if once:
                await mailer.housekeeping(maker, settings)
                if settings.smtp_url:
                    sent = await mailer.send_due(
                        maker, mailer.smtp_sender(settings.smtp_url), settings.mail_from, settings=settings
                    )
                    typer.echo(f"{sent} messages sent")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await mailer.run(maker, settings, stop)
        finally:
            await engine.dispose()

    asyncio.run(main())
