"""`ordersvc suppression ...`, `ordersvc outbox list`, `ordersvc mailer`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import (
    JsonFlag,
    command_group,
    database_url,
    emit,
    in_transaction,
    iso,
    json_output,
    settings_or_fail,
    stop_on_signals,
    with_database,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from ordersvc.outbox.models import OutboxMessage

suppression_app = command_group("Addresses that must never be contacted.")
outbox_app = command_group("Outgoing consent messages.")


@suppression_app.command("add")
def suppression_add(email: str) -> None:
    """Suppress EMAIL for good (as its owner's opt-out does): open orders to it are canceled."""
    from ordersvc.consent import service as consent

    added = in_transaction(lambda session: consent.suppress(session, email=email))
    typer.echo(f"{email} suppressed" if added else f"{email} was already suppressed")


@suppression_app.command("remove")
def suppression_remove(email: str) -> None:
    """Lift the suppression of EMAIL (only at its owner's request)."""
    from ordersvc.consent import service as consent

    in_transaction(lambda session: consent.unsuppress(session, email=email))
    typer.echo(f"{email} removed from the suppression list")


@suppression_app.command("list")
def suppression_list(
    as_json: JsonFlag = False,
) -> None:
    """Every suppressed address, with how it was suppressed and when."""
    from ordersvc.consent import service as consent

    json_output(as_json)
    rows = in_transaction(consent.suppressions)
    if as_json:
        emit([{"email": r.email, "source": r.source, "created_at": iso(r.created_at)} for r in rows])
        return
    if not rows:
        typer.echo("no suppressed addresses")
    for row in rows:
        typer.echo(f"{row.email}\t{row.source}\t{row.created_at:%Y-%m-%d %H:%M:%S}")


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    full: Annotated[bool, typer.Option("--full", help="Print each message's text.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The newest outbox messages (with no SMTP_URL, this is where consent mail waits)."""
    from ordersvc.outbox import mailer
    from ordersvc.outbox import service as outbox

    json_output(as_json)
    render = mailer.renderer(settings_or_fail())

    async def listing(session: AsyncSession) -> list[OutboxMessage]:
        for message_id in await outbox.unrendered(session, limit=limit):  # as the sender writes them
            await outbox.render(session, message_id, render)
        return await outbox.list_outbox(session, status=status, limit=limit)

    rows = in_transaction(listing)
    if as_json:
        emit([_message(m, full) for m in rows])
        return
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
    from ordersvc.outbox import mailer

    url = database_url()
    settings = settings_or_fail()

    async def main(maker: async_sessionmaker[AsyncSession]) -> None:
        if once:
            await mailer.housekeeping(maker, settings)
            if settings.smtp_url:
                sent = await mailer.send_due(
                    maker, mailer.smtp_sender(settings.smtp_url), settings.mail_from, settings=settings
                )
                typer.echo(f"{sent} messages sent")
            return
        await mailer.run(maker, settings, stop_on_signals())

    with_database(url, settings, main)


def _message(m: OutboxMessage, full: bool) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": m.id,
        "status": m.status,
        "to": m.to_email,
        "subject": m.subject,
        "created_at": iso(m.created_at),
    }
    if full:
        fields["text"] = m.body_text
    return fields
