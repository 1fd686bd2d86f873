"""Helpers shared by tests: accounts with money, real server processes, the CLI."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts.callers import AccountCaller
from ordersvc.config import get_settings
from ordersvc.orders import service as orders
from ordersvc.orders.service import PlacedOrder

ORDERSVC = str(Path(sys.executable).parent / "ordersvc")


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass(frozen=True)
class Customer:
    account_id: int
    email: str
    api_key: str


async def confirm_recipient(maker: async_sessionmaker[AsyncSession], customer: Customer, email: str) -> None:
    """Record that `email`'s owner confirmed the customer's orders (as the confirm page does),
    so its orders go straight to `pending`: the one-statement order path."""
    async with maker.begin() as session:
        await session.execute(
            sa.text(
                "INSERT INTO recipient_consents (account_id, email, status, decided_at)"
                " VALUES (:account, lower(:email), 'confirmed', now())"
            ),
            {"account": customer.account_id, "email": email},
        )


async def place_as(
    maker: async_sessionmaker[AsyncSession],
    account_id: int,
    *,
    email: str,
    quantity: int,
    idempotency_key: str | None = None,
) -> PlacedOrder:
    """`orders.place` for an authenticated account (as a browser session's order is placed)."""
    engine = maker.kw["bind"]
    return await orders.place(
        engine,
        get_settings(),
        caller=AccountCaller(account_id),
        email=email,
        quantity=quantity,
        idempotency_key=idempotency_key,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def funded_api_key(tag: str, usd: str) -> str:
    """A new account's API key, made and credited through the operator CLI (as a live server's
    tests need it: in the server's database, by another process)."""
    account = json.loads(run_cli("accounts", "create", unique_email(tag), "--json").stdout)
    assert run_cli("payments", "credit", account["email"], usd).returncode == 0
    key: str = account["api_key"]
    return key


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERSVC, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=timeout, check=False
    )


@dataclass
class ServerProcess:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def serve(log_dir: Path, *, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> Iterator[ServerProcess]:
    """Run `ordersvc serve` on a free loopback port until the block ends."""
    port = free_port()
    log_path = log_dir / f"serve-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [ORDERSVC, "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            text=True,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Inbox:
    """What a loopback SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def loopback_smtp() -> Iterator[tuple[str, Inbox]]:
    """An SMTP server (aiosmtpd) on 127.0.0.1: its `SMTP_URL` and what it receives."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()


def text_of(message: Message) -> str:
    """The plain-text part of a received message."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def rate_limit_remaining(response: httpx.Response) -> str | None:
    """The `r` (requests left) of the answer's `RateLimit` field, or None without one."""
    field = response.headers.get("RateLimit")
    if field is None:
        return None
    match = re.fullmatch(r'"burst";r=(\d+);t=\d+', field)
    assert match, field
    return match.group(1)
