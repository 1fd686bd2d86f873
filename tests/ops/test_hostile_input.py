"""Hostile text at the edge: NUL, unpaired surrogates and invalid UTF-8 anywhere a client writes
(path, query, headers, cookies, JSON strings and keys, forms) are refused by one guard with an
`invalid_text` problem (400 in the head, 422 in the body) before any route sees them, and
non-ASCII digits are no digits. The three instances issue 14 found are here by name;
`test_hostile_properties.py` has the class."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import totp
from tests.accounts.test_selfservice import PASSWORD, csrf, login, signed_up
from tests.conftest import MakeCustomer
from tests.orders.test_endpoints import auth
from tests.support import unique_email

pytestmark = pytest.mark.usefixtures("fresh_throttle")

JSON = {"Content-Type": "application/json"}


def assert_invalid_text(response: httpx.Response, loc: list[str | int]) -> None:
    # The request head (path, query, headers) is malformed: 400; the body's content: 422.
    assert response.status_code == (422 if loc[0] == "body" else 400), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_text"
    assert problem["type"] == "/problems/invalid_text"
    assert problem["errors"][0]["loc"] == loc


@pytest.fixture
async def browser(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def api_key_count(maker: async_sessionmaker[AsyncSession], account_id: int) -> int:
    async with maker() as session:
        count = await session.scalar(sa.text("SELECT count(*) FROM api_keys WHERE account_id = :a"), {"a": account_id})
    return int(count or 0)


class TestTheNamedInstances:
    """Each was a 500 on the old code."""

    async def test_a_nul_in_the_sign_in_email_is_refused_not_a_500(self, client: httpx.AsyncClient) -> None:
        body = b'{"email": "victim\\u0000@example.com", "password": "whatever it is"}'
        response = await client.post("/v1/auth/login", content=body, headers=JSON)
        assert_invalid_text(response, ["body", "email"])

    async def test_a_nul_in_an_api_key_name_is_refused_and_no_key_is_made(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        before = await api_key_count(sessionmaker, customer.account_id)
        response = await client.post(
            "/v1/api-keys", content=b'{"name": "ci\\u0000"}', headers={**JSON, **auth(customer)}
        )
        assert_invalid_text(response, ["body", "name"])
        assert await api_key_count(sessionmaker, customer.account_id) == before

    @pytest.mark.parametrize(
        "digits",
        [
            "\u0660\u0661\u0662\u0663\u0664\u0665",  # Arabic-Indic
            "\uff10\uff11\uff12\uff13\uff14\uff15",  # full-width
            "\u00b9\u00b2\u00b3\u00b9\u00b2\u00b3",  # superscripts: isdigit() says yes, int() says no
        ],
    )
    async def test_non_ascii_digits_as_a_totp_code_are_a_wrong_code_not_a_500(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], digits: str
    ) -> None:
        email = unique_email("digits")
        await signed_up(browser, sessionmaker, email)
        await login(browser, email)
        started = await browser.post("/v1/account/totp", json={"current_password": PASSWORD}, headers=csrf(browser))
        secret = started.json()["secret"]
        code = totp.hotp(secret, totp.step_at(time.time()))
        confirmed = await browser.post("/v1/account/totp/confirm", json={"code": code}, headers=csrf(browser))
        assert confirmed.status_code == 200, confirmed.text
        response = await login(browser, email, totp_code=digits)
        assert (response.status_code, response.json()["code"]) == (401, "invalid_totp_code")
        assert totp.matching_step(secret, digits, now=time.time(), after_step=None) is None

    async def test_a_content_length_of_other_digits_is_not_a_500(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        for declared in (b"\xb2", "\u0665".encode()):  # superscript two (latin-1), an Arabic-Indic five
            response = await client.post(
                "/v1/orders", content=b"", headers={**auth(customer), "content-length": declared}
            )
            assert response.status_code == 413, response.text


class TestTheGuard:
    """Every way client text comes in, refused with the field named."""

    async def test_a_query_parameter(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        for raw in ("a%00b", "a%ED%A0%80b", "a%FF"):  # NUL; a surrogate and a stray byte: not UTF-8
            response = await client.get(f"/v1/orders?limit=5&email={raw}", headers=auth(customer))
            assert_invalid_text(response, ["query", "email"])

    async def test_a_path_parameter(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        for raw in ("osk_%00abc", "osk_%ED%A0%80"):
            assert_invalid_text(await client.delete(f"/v1/api-keys/{raw}", headers=auth(customer)), ["path"])

    async def test_a_consent_link_token(self, client: httpx.AsyncClient) -> None:
        assert_invalid_text(await client.get("/consent/confirm/abc%00.def"), ["path"])

    @pytest.mark.parametrize(
        "header", ["authorization", "x-api-key", "idempotency-key", "cookie", "x-csrf-token", "x-request-id"]
    )
    async def test_a_header(self, client: httpx.AsyncClient, make_customer: MakeCustomer, header: str) -> None:
        customer = await make_customer(balance="5")
        headers = {**auth(customer), **JSON, header: b"a\x00b"}
        response = await client.post("/v1/orders", json={"email": "a@example.com", "quantity": 1000}, headers=headers)
        assert_invalid_text(response, ["header", header])

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            (b'{"email": "a@example.com\\u0000", "quantity": 1000}', ["body", "email"]),
            (b'{"email": "a@example.com", "quantity": 1000, "x": ["ok", {"y": "\\ud800"}]}', ["body", "x", 1, "y"]),
            (b'{"email": "a@example.com", "quantity": 1000, "\\u0000": 1}', ["body", "\\u0000"]),
            (b'{"email": "a\xed\xa0\x80@example.com", "quantity": 1000}', ["body", "email"]),  # raw, as UTF-8
            ('{"email": "a\\u0000@example.com"}'.encode("utf-16"), ["body", "email"]),  # json.loads reads UTF-16
        ],
    )
    async def test_a_json_body(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, body: bytes, loc: list[str | int]
    ) -> None:
        customer = await make_customer(balance="5")
        response = await client.post("/v1/orders", content=body, headers={**auth(customer), **JSON})
        assert_invalid_text(response, loc)
        balance = (await client.get("/v1/balance", headers=auth(customer))).json()["balance"]
        assert balance == "5.00"

    async def test_a_form_body(self) -> None:
        # No REST route takes a form today; the guard reads one as its route would.
        from ordersvc.ops.client_text import unacceptable_in_body

        form = b"application/x-www-form-urlencoded"
        assert unacceptable_in_body(b"a=1&name=x%00y", form) == ("body", "name")
        assert unacceptable_in_body(b"a=1&name=%ED%A0%80", form) == ("body", "name")
        assert unacceptable_in_body(b"a=1&name=%C3%BC", form) is None
        assert unacceptable_in_body(b"--x\r\n\x00", b"multipart/form-data") == ("body",)

    async def test_plain_unicode_is_welcome(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        response = await client.post(
            "/v1/api-keys", json={"name": "clé \u00fc \u4e2d\u6587 \U0001f511"}, headers=auth(customer)
        )
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "clé \u00fc \u4e2d\u6587 \U0001f511"
        escaped = b'{"name": "\\u00e9\\ud83d\\udd11"}'  # a surrogate *pair* is one character
        response = await client.post("/v1/api-keys", content=escaped, headers={**auth(customer), **JSON})
        assert (response.status_code, response.json()["name"]) == (201, "\u00e9\U0001f511")

    async def test_a_webhook_body_is_left_to_its_route(self, client: httpx.AsyncClient) -> None:
        # Signed events are stored cleaned, never refused here: the route answers (unsigned: 401/404).
        response = await client.post("/webhooks/chain", content=b'{"a": "\\u0000"}', headers=JSON)
        assert response.json().get("code") != "invalid_text"
        assert response.status_code < 500


class TestTextHelpers:
    """`ordersvc.text` (imported in each test, so that this file runs on the old code too)."""

    def test_storable(self) -> None:
        from ordersvc import text

        assert text.is_storable("plain")
        assert text.is_storable("\u00fc\U0001f511")
        assert not text.is_storable("a\x00")
        assert not text.is_storable("\ud800")
        assert not text.is_storable("\udfff")
        assert text.clean_text("a\x00b\ud800") == "a\ufffdb\ufffd"
        assert text.shown("a\x00\ud800") == "a\\u0000\\ud800"

    def test_ascii_digits(self) -> None:
        from ordersvc import text

        assert text.is_ascii_digits("0123456789")
        for other in ("", "12a", "\u0665\u0660\u0660", "\uff15\uff10\uff10", "\u00b2", " 1", "1_000", "-1"):
            assert not text.is_ascii_digits(other), other

    def test_deep_json_is_walked_without_recursion(self) -> None:
        from ordersvc import text

        deep: object = "\x00"
        for _ in range(5_000):
            deep = [deep]
        found = text.unstorable_in(deep)
        assert found is not None
        assert len(found) == 5_000
