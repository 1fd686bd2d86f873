"""The contract's three sample clients, replayed against a real server process over TCP:
PHP's `query_no_curl` (file_get_contents) and `query_curl`, Python requests, and curl.

Each sends exactly what that client sends; the endpoint URL carries the key, as the
customer copies it from the dashboard."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from ordersvc.accounts import service as accounts
from ordersvc.ledger import service as ledger
from ordersvc.money import parse_usd
from tests.support import ServerProcess, serve, unique_email

PLACE_ORDER = {"action": "order", "email": "billgates@microsoft.com", "quantity": 10000}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("sample-clients")) as process:
        yield process


@pytest.fixture
async def endpoint(server: ServerProcess, sessionmaker) -> str:
    """The endpoint URL a customer with 25 USD copies from the dashboard: key included."""
    async with sessionmaker.begin() as session:
        account, api_key = await accounts.create_account(session, email=unique_email("client"))
        await ledger.credit(session, email=account.email, amount_mills=parse_usd("25"))
    return f"{server.base_url}/api?key={api_key}"


def raw_http(endpoint: str, head: str, body: bytes) -> tuple[int, bytes]:
    """Send exactly these bytes and return (status, body), reading the response by its
    Content-Length as an HTTP/1.1 client on a kept-alive connection does."""
    url = urlsplit(endpoint)
    request = head.replace("{path}", f"{url.path}?{url.query}").replace("{host}", url.netloc)
    request = request.replace("{length}", str(len(body))).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(65536)
        header, _, payload = response.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", header).group(1))
        while len(payload) < length:
            payload += sock.recv(65536)
    return int(header.split(b" ")[1]), payload


def php_json_encode(body: dict[str, object]) -> bytes:
    # PHP's json_encode: compact, "/" escaped.
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/").encode()


def php_query_no_curl(endpoint: str, body: dict[str, object]) -> object:
    """`file_get_contents` with an http stream context: HTTP/1.1 POST, Connection: close."""
    head = (
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {length}\r\n"
        "Content-type: application/json\r\n\r\n"
    )
    status, payload = raw_http(endpoint, head, php_json_encode(body))
    if status >= 400:  # PHP returns false here, and the client reports "Connection error"
        return {"error": "Connection error"}
    return json.loads(payload)


def php_query_curl(endpoint: str, body: dict[str, object]) -> object:
    """libcurl with CURLOPT_POSTFIELDS and `Content-Type:application/json` (no space)."""
    head = (
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\nContent-Type:application/json\r\n"
        "Content-Length: {length}\r\n\r\n"
    )
    _status, payload = raw_http(endpoint, head, php_json_encode(body))
    return json.loads(payload) if payload else {"error": "Connection error"}


class TestPhpClients:
    @pytest.mark.parametrize("query", [php_query_no_curl, php_query_curl])
    def test_php_session(self, endpoint: str, query) -> None:
        assert query(endpoint, {"action": "balance"}) == {"balance": 25.0}
        placed = query(endpoint, PLACE_ORDER)
        assert re.fullmatch(r"[0-9A-F]{8}", placed["order"])
        orders = query(endpoint, {"action": "orders"})
        assert [o["id"] for o in orders["orders"]] == [placed["order"]]
        payments = query(endpoint, {"action": "payments"})
        assert [p["amount"] for p in payments["payments"]] == [25.0, -10.0]
        assert query(endpoint, {"action": "balance"}) == {"balance": 15.0}

    def test_php_sees_errors_because_they_are_http_200(self, endpoint: str) -> None:
        assert php_query_no_curl(endpoint, {"action": "nope"}) == {"error": "Unknown action."}
        bad_key = endpoint.split("?")[0] + "?key=osk_wrong"
        assert php_query_no_curl(bad_key, {"action": "balance"}) == {"error": "Invalid key."}


class TestPythonRequests:
    def test_python_session(self, endpoint: str) -> None:
        balance = requests.post(endpoint, json={"action": "balance"}, timeout=10)
        assert (balance.status_code, balance.content) == (200, b'{"balance": 25.00}')
        placed = requests.post(endpoint, json=PLACE_ORDER, timeout=10).json()
        assert re.fullmatch(r"[0-9A-F]{8}", placed["order"])
        assert requests.post(endpoint, json={"action": "orders"}, timeout=10).json()["total"] == 1
        assert requests.post(endpoint, json={"action": "payments"}, timeout=10).json()["total"] == 2
        assert requests.post(endpoint, json={"action": "balance"}, timeout=10).content == b'{"balance": 15.00}'


class TestCurl:
    def curl(self, endpoint: str, data: str) -> bytes:
        result = subprocess.run(
            ["curl", "-sS", "-X", "POST", endpoint, "-H", "Content-Type: application/json", "-d", data],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return result.stdout

    @pytest.mark.skipif(subprocess.run(["which", "curl"], capture_output=True).returncode != 0, reason="no curl")
    def test_curl_session(self, endpoint: str) -> None:
        assert self.curl(endpoint, '{"action":"balance"}') == b'{"balance": 25.00}'
        placed = self.curl(endpoint, '{"action":"order", "email":"billgates@microsoft.com", "quantity":10000}')
        assert re.fullmatch(rb'\{"order":"[0-9A-F]{8}"\}', placed)
        assert json.loads(self.curl(endpoint, '{"action":"orders"}'))["total"] == 1
        assert json.loads(self.curl(endpoint, '{"action":"payments"}'))["total"] == 2
        assert self.curl(endpoint, '{"action":"balance"}') == b'{"balance": 15.00}'


def test_server_log_never_contains_a_key(server: ServerProcess, endpoint: str) -> None:
    key = endpoint.split("key=")[1]
    requests.post(endpoint, json={"action": "balance"}, timeout=10)
    requests.post(endpoint.split("?")[0], json={"action": "balance", "key": key}, timeout=10)
    # Percent-encoded parameter names are decoded by the app, so they must be redacted too.
    encoded = endpoint.replace("?key=", "?%6Bey=")
    assert requests.post(encoded, json={"action": "balance"}, timeout=10).json() == {"balance": 25.0}
    log = Path(server.log_path).read_text()
    assert '"query": "key=[REDACTED]"' in log
    assert key not in log
