"""The panel API v2 from the clients resellers already run, against a real server over TCP: the
usual PHP client class (form-encoded curl POSTs, `json_decode`), and Python `requests` form posts,
through every action and every refusal."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import service as accounts
from ordersvc.ledger import service as ledger
from ordersvc.money import parse_usd
from ordersvc.panel.wire import public_id_of
from tests.support import ServerProcess, serve, unique_email

PHP_CLIENT = Path(__file__).with_name("panel_client.php")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("panel-clients")) as process:
        yield process


@pytest.fixture
async def funded_key(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    async with sessionmaker.begin() as session:
        account, api_key = await accounts.create_account(session, email=unique_email("reseller"))
        await ledger.credit(session, email=account.email, amount_mills=parse_usd("25"))
    return api_key


PENDING = {"charge": "1.00", "start_count": "0", "status": "Pending", "remains": "1000", "currency": "USD"}
SERVICE = {
    "service": 1,
    "name": "Order to a confirmed mailbox",
    "type": "Default",
    "category": "Email",
    "rate": "1.00",
    "min": "500",
    "max": "50000",
    "refill": False,
    "cancel": True,
}


@pytest.mark.skipif(shutil.which("php") is None, reason="no php (Debian's php-cli and php-curl; .ci/run installs them)")
def test_php_client_class(server: ServerProcess, funded_key: str) -> None:
    to = unique_email("to")
    run = subprocess.run(
        ["php", str(PHP_CLIENT), f"{server.base_url}/api/v2", funded_key, to],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(run.stdout)
    order = out["order"]["order"]
    assert isinstance(order, int)
    assert public_id_of(order) is not None
    assert out["services"] == [SERVICE]
    assert out["balance"] == {"balance": "25.00", "currency": "USD"}
    assert out["status"] == PENDING
    assert out["multiStatus"] == {str(order): PENDING, "12345": {"error": "Incorrect order ID"}}
    assert out["refused"] == {
        "service": {"error": "Incorrect service ID"},
        "link": {"error": "Incorrect link"},
        "min": {"error": "Quantity less than minimal 500"},
        "max": {"error": "Quantity more than maximal 50000"},
        "funds": {"error": "Not enough funds on balance"},
        "status": {"error": "Incorrect order ID"},
    }
    assert out["refill"] == {"error": "Refill is disabled for this service"}
    assert out["multiRefill"] == [{"order": order, "refill": {"error": "Refill is disabled for this service"}}]
    assert out["refillStatus"] == {"error": "Incorrect refill ID"}
    assert out["cancel"] == [{"order": order, "cancel": 1}, {"order": 12345, "cancel": {"error": "Incorrect order ID"}}]
    assert out["statusAfter"] == PENDING | {"charge": "0.00", "status": "Canceled"}
    assert out["balanceAfter"] == {"balance": "25.00", "currency": "USD"}
    assert out["badKey"] == {"error": "Invalid API key"}


def test_python_requests_form_posts(server: ServerProcess, funded_key: str) -> None:
    url = f"{server.base_url}/api/v2"

    def call(**fields: object) -> object:
        response = requests.post(url, data={"key": funded_key, **fields}, timeout=10)
        assert response.status_code == 200
        return response.json()

    assert call(action="services") == [SERVICE]
    assert call(action="balance") == {"balance": "25.00", "currency": "USD"}
    to = unique_email("to")
    placed = call(action="add", service=1, link=to, quantity=1000, request_id="py-1")
    assert isinstance(placed, dict)
    order = placed["order"]
    assert call(action="add", service=1, link=to, quantity=1000, request_id="py-1") == placed  # replayed
    assert call(action="status", order=order) == PENDING
    assert call(action="status", orders=f"{order},1") == {str(order): PENDING, "1": {"error": "Incorrect order ID"}}
    for fields, error in [
        ({"service": 3, "link": to, "quantity": 1000}, "Incorrect service ID"),
        ({"service": 1, "link": "", "quantity": 1000}, "Incorrect link"),
        ({"service": 1, "link": to, "quantity": 10}, "Quantity less than minimal 500"),
        ({"service": 1, "link": to, "quantity": 50001}, "Quantity more than maximal 50000"),
        ({"service": 1, "link": to, "quantity": 50000}, "Not enough funds on balance"),
    ]:
        assert call(action="add", **fields) == {"error": error}
    assert call(action="refill", order=order) == {"error": "Refill is disabled for this service"}
    assert call(action="refill_status", refill=1) == {"error": "Incorrect refill ID"}
    assert call(action="cancel", orders=str(order)) == [{"order": order, "cancel": 1}]
    assert call(action="balance") == {"balance": "25.00", "currency": "USD"}
    assert call(action="what") == {"error": "Incorrect request"}
    wrong = requests.post(url, data={"key": "osk_wrong", "action": "balance"}, timeout=10)
    assert wrong.json() == {"error": "Invalid API key"}
    # The key never reaches the server's log.
    assert funded_key not in server.log()
