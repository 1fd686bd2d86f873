"""The links in mail name where recipients reach the service: ORDERSVC_PUBLIC_URL when set,
otherwise where `serve` listens (it used to name port 8000 whatever `--port` said). Production
requires the public URL."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.config import Settings
from ordersvc.outbox import service as outbox
from tests.conftest import MakeCustomer
from tests.orders.test_endpoints import auth
from tests.support import free_port, run_cli, serve, unique_email


def _env_without_public_url(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ORDERSVC_PUBLIC_URL", "ORDERSVC_HOST", "ORDERSVC_PORT")}
    return {**env, "ORDERSVC_MAILER_IN_SERVE": "false", **extra}


class TestLinksNameWhereTheServiceListens:
    async def test_serve_on_another_port_links_to_that_port(
        self,
        database_url: str,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        customer = await make_customer(balance="5")
        recipient = unique_email("port")
        # The message is written by the server's own mailer, when it takes the queued request.
        env = _env_without_public_url(ORDERSVC_MAILER_IN_SERVE="true", ORDERSVC_MAILER_INTERVAL_SECONDS="0.2")
        with serve(tmp_path, env=env) as server:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                answer = await client.post(
                    "/v1/orders", json={"email": recipient, "quantity": 1000}, headers=auth(customer)
                )
                assert answer.status_code == 201, answer.text
            for _ in range(150):  # up to 30 s
                async with sessionmaker() as session:
                    (message,) = [m for m in await outbox.list_outbox(session, limit=1000) if m.to_email == recipient]
                if message.body_text is not None:
                    break
                await asyncio.sleep(0.2)
        assert message.body_text is not None
        assert f"{server.base_url}/consent/confirm/" in message.body_text  # http://127.0.0.1:<its port>
        assert f"{server.base_url}/consent/optout/" in message.body_text
        assert "127.0.0.1:8000" not in message.body_text

    def test_without_a_public_url_the_link_host_is_the_listening_address(self) -> None:
        assert Settings(host="127.0.0.1", port=8123).public_url == "http://127.0.0.1:8123"
        assert Settings(host="localhost", port=8123).public_url == "http://localhost:8123"
        # Every interface: loopback is the one address sure to reach it (from this machine).
        assert Settings(host="0.0.0.0", port=8123).public_url == "http://127.0.0.1:8123"
        assert Settings(host="::", port=8123).public_url == "http://[::1]:8123"
        assert Settings(host="::1", port=8123).public_url == "http://[::1]:8123"
        # `ordersvc mailer` listens nowhere: it links to ORDERSVC_HOST and ORDERSVC_PORT, as `serve`
        # without options would listen.
        assert Settings().public_url == "http://127.0.0.1:8000"
        assert Settings(public_url="https://orders.example.com", port=8123).public_url == "https://orders.example.com"


class TestProductionRequiresThePublicUrl:
    def test_settings_refuse_production_without_it(self) -> None:
        key = secrets.token_hex(32)
        with pytest.raises(ValidationError, match="ORDERSVC_PUBLIC_URL must be set in production"):
            Settings(environment="production", secret_key=key)
        kept = Settings(environment="production", secret_key=key, public_url="https://orders.example.com")
        assert kept.public_url == "https://orders.example.com"

    def test_serve_refuses_to_start_with_one_line(self, database_url: str) -> None:
        env = _env_without_public_url(ORDERSVC_ENVIRONMENT="production", ORDERSVC_SECRET_KEY=secrets.token_hex(32))
        port = free_port()
        # One process: were it to start after all, the timeout's kill would leave no workers behind.
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), env=env, timeout=60)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "error: ORDERSVC_PUBLIC_URL must be set in production: the address recipients reach it at"
        ]
