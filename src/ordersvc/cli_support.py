"""Shared plumbing of the CLI commands: the database, one transaction per command, what a command
prints (text, or JSON with `--json`), errors and exit codes.

Only `typer` is imported here at load: `ordersvc --help` and `--version` load no database, ORM or
web framework. A command imports what it uses when it runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# Typer carries its own copy of click (typer._click, since 0.25): its exceptions are these, not
# click's. The version is pinned by uv.lock; tests/test_cli.py checks the JSON usage errors.
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

if TYPE_CHECKING:
    import asyncio
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from ordersvc.config import Settings
    from ordersvc.errors import ServiceError

T = TypeVar("T")

# Exit codes, one per kind of outcome (listed in `ordersvc --help`).
EXIT_REFUSED = 1  # the service refused (a rule, a check that found a difference, bad input)
EXIT_USAGE = 2  # the command line itself is wrong (click's own code)
EXIT_NOT_FOUND = 3  # what the command names does not exist
EXIT_CONFLICT = 4  # it exists already, or is in a state that forbids this
EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 refused (a rule, bad input, a difference found); 2 usage error;"
    " 3 not found; 4 conflict (already exists, or not in a state that allows it)."
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON: one object, an array for a list (errors too).")]

_json_errors = False


def command_group(help: str) -> typer.Typer:
    """A group of commands (`ordersvc accounts ...`). Plain help: rendering it with rich cost
    more than everything else `--help` does."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


class JsonErrorsGroup(TyperGroup):
    """The `ordersvc` group: with `--json` on the command line, a usage error (an unknown option,
    a missing argument, a bad value) is printed as JSON on standard error too, like every other
    error, with its exit code (2)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            error = {"code": "usage", "message": exc.format_message()}
            typer.echo(json.dumps({"error": error}), err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def json_output(as_json: bool) -> bool:
    """Called by a command with its `--json` flag: its errors are printed as JSON too."""
    global _json_errors
    _json_errors = as_json
    return as_json


def emit(value: Any) -> None:
    """One JSON document on standard output: an object, or an array for a list."""
    typer.echo(json.dumps(value, ensure_ascii=False))


def iso(moment: datetime | None) -> str | None:
    """A time as JSON shows it (ISO 8601), or null."""
    return None if moment is None else moment.isoformat()


def fail(message: str, *, code: int = EXIT_REFUSED, error: str = "refused") -> typer.Exit:
    """Print an error (`error: ...`, or with `--json` `{"error": {"code": ..., "message": ...}}`)
    on standard error; the Exit to raise."""
    if _json_errors:
        typer.echo(json.dumps({"error": {"code": error, "message": message}}), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


def refused(exc: ServiceError) -> typer.Exit:
    """A service error as the CLI reports it: its code and message, its exit code by its kind."""
    kinds = {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}
    return fail(exc.message, code=kinds.get(exc.status, EXIT_REFUSED), error=exc.code)


def settings_or_fail() -> Settings:
    """The settings, or the reasons they are refused as one line each (no traceback)."""
    from pydantic import ValidationError

    from ordersvc.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            fail(error["msg"].removeprefix("Value error, "), error="invalid_setting")
        raise typer.Exit(code=EXIT_REFUSED) from None


def database_url() -> str:
    """Resolve the database (starting the embedded one if needed) and bring its schema to head
    (a look at its revision, and the migrations only when it is behind)."""
    from ordersvc import db

    url = db.resolve_database_url(settings_or_fail())
    db.ensure_schema(url)
    return url


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, for a command that runs until it is told to stop (in the
    running event loop)."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def with_database(url: str, settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `work` with a session factory on its own engine, disposed of when it ends."""
    import asyncio

    from ordersvc import db

    async def main() -> T:
        engine = db.create_engine(url, settings)
        try:
            return await work(db.create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction: committed if it returns, rolled back if it raises."""
    import asyncio

    from ordersvc import db
    from ordersvc.errors import ServiceError

    url = database_url()

    async def main() -> T:
        engine = db.create_engine(url, settings_or_fail())
        try:
            async with db.create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        raise refused(exc) from None
