"""`ordersvc`: the operator's command line. Scripts rely on these exact forms.

Loading this module loads `typer` and the commands' definitions only; each command imports the
services it calls when it runs (`ordersvc --help` answers without loading the database, the ORM
or the web framework). Lists and creations take `--json` (an array for a list, one object
otherwise; errors then as JSON too), and the exit codes are `cli_support`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ordersvc.cli_support import (
    EXIT_CODES_HELP,
    JsonErrorsGroup,
    JsonFlag,
    command_group,
    database_url,
    emit,
    fail,
    in_transaction,
    json_output,
    refused,
    settings_or_fail,
)
from ordersvc.cluster.cli import cluster_app
from ordersvc.consent.cli import mailer_command, outbox_app, suppression_app
from ordersvc.coupons.cli import coupons_app
from ordersvc.deposits.cli import bonus_app, deposits_app
from ordersvc.fulfilment.cli import worker_command, workers_app
from ordersvc.operators.cli import operators_app
from ordersvc.webhooks.cli import webhooks_command

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(
    cls=JsonErrorsGroup,
    help="ordersvc: prepaid-balance order service.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rendering it with rich cost more than the rest of `--help`
)
accounts_app = command_group("Customer accounts.")
keys_app = command_group("API keys.")
payments_app = command_group("Manual payments.")
ledger_app = command_group("Ledger checks.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(payments_app, name="payments")
app.add_typer(ledger_app, name="ledger")
app.add_typer(deposits_app, name="deposits")
app.add_typer(bonus_app, name="bonus")
app.add_typer(coupons_app, name="coupons")
app.add_typer(suppression_app, name="suppression")
app.add_typer(outbox_app, name="outbox")
app.command("mailer")(mailer_command)
app.command("webhooks")(webhooks_command)
app.add_typer(workers_app, name="workers")
app.add_typer(operators_app, name="operators")
app.add_typer(cluster_app, name="cluster")
app.command("worker")(worker_command)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"ordersvc {version('ordersvc')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """ordersvc: prepaid-balance order service."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Run the HTTP service (migrations are applied first)."""
    import os
    import tempfile

    import uvicorn

    from ordersvc.config import get_settings
    from ordersvc.keyring import SecretKeyError, keyring
    from ordersvc.logging_config import configure_logging, logging_config
    from ordersvc.ops import http

    # The app, its workers and the mailer inside `serve` read where it listens from the
    # environment: with no ORDERSVC_PUBLIC_URL, the links in mail name this address.
    if host is not None:
        os.environ["ORDERSVC_HOST"] = host
    if port is not None:
        os.environ["ORDERSVC_PORT"] = str(port)
    get_settings.cache_clear()
    settings = settings_or_fail()
    configure_logging(settings.log_format, settings.log_level)
    try:
        keyring(settings)  # the secret key made (or checked) once, before any worker starts
    except SecretKeyError as exc:
        raise fail(str(exc)) from None
    database_url()
    get_settings.cache_clear()  # worker processes read the resolved DATABASE_URL
    if workers > 1 and settings.metrics_enabled and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its samples here; a scrape of any worker sums them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ordersvc-metrics-")
    options = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers,
        "log_config": logging_config(settings.log_format, settings.log_level),
        "access_log": False,  # the app logs every request itself, with its request id and no secrets
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "timeout_keep_alive": 5,
        "http": "ordersvc.ops.http:HttpProtocol",  # httptools; the head is capped at 16 KiB
    }
    if settings.forwarded_allow_ips is not None:  # else uvicorn's FORWARDED_ALLOW_IPS or loopback
        options["forwarded_allow_ips"] = settings.forwarded_allow_ips
    # The webhook sender: a process of its own beside the workers, at a lower CPU priority
    # (ops/background.py), not a task in each worker.
    sender = None
    if settings.webhooks_in_serve:
        from ordersvc.ops.background import BackgroundCommand

        sender = BackgroundCommand(["webhooks", "--beside-serve"])
        os.environ["ORDERSVC_WEBHOOKS_IN_SERVE"] = "false"  # the workers leave sending to it
        get_settings.cache_clear()  # (one worker: the app is made in this process)
    try:
        if workers == 1 or not http.reuse_port_available():
            if sender is not None:
                sender.start()
            uvicorn.run("ordersvc.main:app_factory", **options)  # type: ignore[arg-type]
            return
        # Each worker listens on a socket of its own (SO_REUSEPORT): the kernel balances connections.
        config = uvicorn.Config("ordersvc.main:app_factory", **options)  # type: ignore[arg-type]
        try:
            http.check_port_free(config.host, config.port)
        except OSError as exc:
            raise fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
        if sender is not None:
            sender.start()
        http.run_workers(config)
    finally:
        if sender is not None:
            sender.stop()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest revision."""
    database_url()
    typer.echo("database schema is up to date")


@app.command()
def openapi(
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the REST API's OpenAPI document (JSON), without a database or a server."""
    import json
    from pathlib import Path

    from ordersvc.main import create_app

    document = json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(document, nl=False)
    else:
        Path(output).write_text(document, encoding="utf-8")


@accounts_app.command("create")
def accounts_create(
    email: str,
    as_json: JsonFlag = False,
) -> None:
    """Create an account and its first API key. The key is shown only here."""
    from ordersvc.accounts import service as accounts

    json_output(as_json)
    account, api_key = in_transaction(lambda session: accounts.create_account(session, email=email))
    if as_json:
        emit({"id": account.id, "email": account.email, "api_key": api_key})
    else:
        typer.echo(f"account {account.id} created for {account.email}")
        typer.echo(f"API key (shown only once): {api_key}")


@accounts_app.command("list")
def accounts_list(
    as_json: JsonFlag = False,
) -> None:
    """Every account: id, email, state (active, unverified, disabled), sign-in methods."""
    from ordersvc.accounts import service as accounts
    from ordersvc.money import format_usd

    json_output(as_json)
    records = []
    for account in in_transaction(accounts.list_accounts):
        state = "disabled" if account.disabled_at else ("active" if account.email_verified_at else "unverified")
        records.append(
            {
                "id": account.id,
                "email": account.email,
                "state": state,
                "password": account.password_hash is not None,
                "totp": account.totp_enabled_at is not None,
                "balance": format_usd(account.balance_mills),
            }
        )
    if as_json:
        emit(records)
        return
    for record in records:
        flags = ", ".join(f for f, on in (("password", record["password"]), ("totp", record["totp"])) if on)
        typer.echo(f"{record['id']}\t{record['email']}\t{record['state']}\t{record['balance']} USD\t{flags or '-'}")


@accounts_app.command("disable")
def accounts_disable(email: str) -> None:
    """Disable an account: its API keys and sessions stop working at once, workers stop claiming
    its orders (they wait, and are claimable again after `enable`)."""
    from ordersvc.accounts import security

    account = in_transaction(lambda session: security.set_disabled(session, email=email, disabled=True))
    typer.echo(f"account {account.id} ({account.email}) disabled")


@accounts_app.command("enable")
def accounts_enable(email: str) -> None:
    """Enable a disabled account again."""
    from ordersvc.accounts import security

    account = in_transaction(lambda session: security.set_disabled(session, email=email, disabled=False))
    typer.echo(f"account {account.id} ({account.email}) enabled")


@keys_app.command("create")
def keys_create(
    email: str,
    as_json: JsonFlag = False,
) -> None:
    """Create another API key for an account. The key is shown only here."""
    from ordersvc.accounts import service as accounts

    json_output(as_json)

    async def work(session: AsyncSession) -> tuple[str, str, str]:
        account = await accounts.get_account_by_email(session, email=email)
        key, api_key = await accounts.create_api_key(session, account=account)
        return account.email, key.prefix, api_key

    account_email, prefix, api_key = in_transaction(work)
    if as_json:
        emit({"email": account_email, "prefix": prefix, "api_key": api_key})
    else:
        typer.echo(f"API key {prefix}... created for {account_email}")
        typer.echo(f"API key (shown only once): {api_key}")


@keys_app.command("revoke")
def keys_revoke(key_prefix: str) -> None:
    """Revoke the API key starting with KEY_PREFIX (as shown when it was created)."""
    from ordersvc.accounts import service as accounts

    key = in_transaction(lambda session: accounts.revoke_api_key(session, prefix=key_prefix))
    typer.echo(f"API key {key.prefix}... revoked")


# ignore_unknown_options: a negative AMOUNT such as "-5" reaches our own one-line check
# instead of being read as an unknown option.
# ignore_unknown_options: a negative AMOUNT such as "-5" reaches our own one-line check
# instead of being read as an unknown option (so the options are declared before the arguments
# are read: `--json` anywhere on the line is still the flag).
@payments_app.command("credit", context_settings={"ignore_unknown_options": True})
def payments_credit(
    email: str,
    amount: str,
    description: Annotated[str | None, typer.Option(help="Shown to the operator in the ledger.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Credit AMOUNT USD (up to 3 decimals) to the account with EMAIL (in the audit log, as the
    local operator)."""
    from ordersvc.admin import service as admin
    from ordersvc.errors import ServiceError
    from ordersvc.ledger import service as ledger
    from ordersvc.money import format_usd, parse_usd

    json_output(as_json)
    try:
        mills = parse_usd(amount)
    except ServiceError as exc:
        raise refused(exc) from None

    async def work(session: AsyncSession) -> tuple[int, int, int]:
        payment = await admin.cli_credit(session, email=email, amount_mills=mills, description=description)
        assert payment.id is not None
        return payment.id, payment.amount_mills, await ledger.get_balance(session, account_id=payment.account_id)

    payment_id, credited, balance = in_transaction(work)
    if as_json:
        emit({"payment_id": payment_id, "email": email, "amount": format_usd(credited), "balance": format_usd(balance)})
    else:
        typer.echo(f"credited {format_usd(credited)} USD to {email}; balance {format_usd(balance)} USD")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every account's balance against the sum of its payments, and its payment and order
    counters against the real counts (exit 1 on a difference)."""
    from ordersvc.ledger import service as ledger
    from ordersvc.money import format_usd

    mismatches = in_transaction(ledger.verify)
    count_mismatches = in_transaction(ledger.verify_counts)
    if not mismatches and not count_mismatches:
        typer.echo("ok: every balance equals the sum of its payments")
        return
    for m in mismatches:
        typer.echo(
            f"account {m.account_id} {m.email}: balance {format_usd(m.balance_mills)}"
            f" != payments {format_usd(m.payments_sum_mills)}",
            err=True,
        )
    for c in count_mismatches:
        typer.echo(f"account {c.account_id} {c.email}: {c.what} counter {c.counted} != {c.actual}", err=True)
    if count_mismatches and not mismatches:
        typer.echo("the balances are right; `ordersvc ledger recount` repairs the counters", err=True)
    raise typer.Exit(code=1)


@ledger_app.command("recount")
def ledger_recount() -> None:
    """Set every account's payment and order counters to the real counts (writers of payments
    and orders wait while it runs)."""
    from ordersvc.ledger import service as ledger

    repaired = in_transaction(ledger.recount)
    typer.echo(f"recounted: {repaired} account(s) repaired")
