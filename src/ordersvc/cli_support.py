"""Shared plumbing of the CLI commands: the database, one transaction per command, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc import db
from ordersvc.config import Settings, get_settings
from ordersvc.errors import ServiceError

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def settings_or_fail() -> Settings:
    """The settings, or the reasons they are refused as one line each (no traceback)."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {error['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(code=1) from None


def database_url() -> str:
    """Resolve the database (starting the embedded one if needed) and bring its schema to head."""
    url = db.resolve_database_url(get_settings())
    db.run_migrations(url)
    return url


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction: committed if it returns, rolled back if it raises."""
    url = database_url()

    async def main() -> T:
        engine = db.create_engine(url, get_settings())
        try:
            async with db.create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        raise fail(exc.message) from None
