"""Webhook endpoints: what an endpoint may point at (SSRF, when created and when each delivery is
sent), their limits, rotation of the signing secret, resending, and the endpoints' API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ordersvc.keyring import keyring
from ordersvc.webhooks import addresses
from ordersvc.webhooks import service as webhooks
from tests.conftest import MakeCustomer
from tests.support import Customer, unique_email
from tests.webhooks.conftest import Deliver, Receiver, create_endpoint, sender_settings


def key(customer: Customer) -> dict[str, str]:
    return {"X-API-Key": customer.api_key}


async def place(client: httpx.AsyncClient, customer: Customer) -> dict[str, Any]:
    response = await client.post(
        "/v1/orders", json={"email": unique_email("to"), "quantity": 1000}, headers=key(customer)
    )
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


# Every class of address an endpoint must never reach, as a hosts file the test controls maps names.
HOSTS = {
    "loopback.test": ["127.0.0.1"],
    "loopback-v6.test": ["::1"],
    "private-10.test": ["10.1.2.3"],
    "private-172.test": ["172.16.0.9"],
    "private-192.test": ["192.168.1.1"],
    "shared.test": ["100.64.0.1"],
    "link-local.test": ["169.254.10.10"],
    "metadata.test": ["169.254.169.254"],
    "metadata-v6.test": ["fd00:ec2::254"],
    "link-local-v6.test": ["fe80::1"],
    "ula.test": ["fc00::1"],
    "multicast.test": ["224.0.0.251"],
    "multicast-v6.test": ["ff02::1"],
    "unspecified.test": ["0.0.0.0"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.test": ["2002:7f00:1::"],
    "one-bad-of-two.test": ["93.184.216.34", "10.0.0.1"],
    # Ranges that Python's own tables miss on some releases: refused by name.
    "ipv4-compatible.test": ["::127.0.0.1"],
    "ipv4-compatible-metadata.test": ["::a9fe:a9fe"],
    "ipv4-translated.test": ["::ffff:0:7f00:1"],
    "local-use-nat64.test": ["64:ff9b:1::7f00:1"],
    "site-local-v6.test": ["fec0::1"],
    "reserved.test": ["240.0.0.1"],
}


async def hosts_resolver(host: str, port: int) -> list[str]:
    if host not in HOSTS:
        raise OSError(f"{host}: not known")
    return HOSTS[host]


@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_the_sender_refuses_every_non_public_address_after_resolving(host: str) -> None:
    with pytest.raises(addresses.AddressRefused) as refused:
        await addresses.resolve(host, 443, allow_loopback=False, resolver=hosts_resolver)
    # The customer is told it was refused, not what the name resolved to (the log says).
    assert str(refused.value) == addresses.AddressRefused.MESSAGE
    assert refused.value.detail.startswith("the host resolves to ")
    assert all(address not in str(refused.value) for address in HOSTS[host])


async def test_a_public_address_is_used_as_resolved_and_loopback_only_when_allowed() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    assert await addresses.resolve("example.test", 443, allow_loopback=False, resolver=public) == "93.184.216.34"
    assert await addresses.resolve("loopback.test", 443, allow_loopback=True, resolver=hosts_resolver) == "127.0.0.1"
    with pytest.raises(addresses.AddressRefused) as refused:
        await addresses.resolve("private-10.test", 443, allow_loopback=True, resolver=hosts_resolver)
    assert "private" in refused.value.detail
    # Through the system's own resolver (/etc/hosts): localhost is this machine.
    with pytest.raises(addresses.AddressRefused) as refused:
        await addresses.resolve("localhost", 443, allow_loopback=False)
    assert "loopback" in refused.value.detail
    # A name that does not resolve gets the same answer as a private one.
    with pytest.raises(addresses.AddressRefused, match=addresses.AddressRefused.MESSAGE) as refused:
        await addresses.resolve("nowhere.invalid", 443, allow_loopback=False)
    assert "did not resolve" in refused.value.detail


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "https"),
        ("ftp://example.com/hook", "https"),
        ("https:///hook", "host"),
        ("https://user:pass@example.com/hook", "user name or password"),
        ("https://example.com/hook#frag", "fragment"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost/hook", "localhost"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:192.168.0.1]/hook", "private"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://example.com:99999/hook", "valid"),
        ("https://exa mple.com/hook", "spaces"),
        ("https://example.com/" + "a" * 2100, "longer"),
        ("https://example.com:22/hook", "port must be 443"),
        ("https://example.com:80/hook", "port must be 443"),
        ("https://[::127.0.0.1]/hook", "deprecated"),
        ("https://[64:ff9b:1::7f00:1]/hook", "deprecated"),
        ("https://240.0.0.1/hook", "private"),  # reserved: Python counts it private
        ("https://\u2603.example/hook", "not a valid domain name"),
    ],
)
def test_endpoint_urls_that_are_refused_when_created(url: str, why: str) -> None:
    with pytest.raises(addresses.UrlRefused, match=why):
        addresses.check_url(url, allow_loopback=False)


def test_an_internationalised_host_is_kept_as_its_a_labels() -> None:
    """DNS, TLS and the Host header take ASCII only: the name is converted once, when created."""
    assert addresses.check_url("https://exämple.com/h?x=ü", allow_loopback=False) == "https://xn--exmple-cua.com/h?x=ü"
    assert (
        addresses.check_url("https://EXÄMPLE.com:8443/h", allow_loopback=False) == "https://xn--exmple-cua.com:8443/h"
    )
    assert addresses.check_url("https://example.com\uff0e/h", allow_loopback=False) == "https://example.com./h"
    assert addresses.check_url("https://example.com:8443/h", allow_loopback=False) == "https://example.com:8443/h"


def test_loopback_urls_only_with_the_development_setting() -> None:
    assert addresses.check_url("http://127.0.0.1:8080/h", allow_loopback=True)
    assert addresses.check_url("https://localhost/h", allow_loopback=True)
    with pytest.raises(addresses.UrlRefused):
        addresses.check_url("http://example.com/h", allow_loopback=True)  # plain http: loopback only


async def test_a_refused_address_is_shown_on_the_delivery_and_retried(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="10.00")
    endpoint = await create_endpoint(
        client, customer, "https://metadata.test/latest", event_types=["order.created"]
    )  # a name: it passes creation, and is refused at each attempt, once resolved
    await place(client, customer)
    settings = sender_settings(webhooks_allow_loopback=False)
    await deliver(rounds=3, settings=settings, resolver=hosts_resolver)
    (delivery,) = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=key(customer))
    ).json()["data"]
    assert delivery["status"] == "pending"
    assert delivery["attempts"] >= 1
    assert delivery["response_status"] is None
    assert delivery["error"] == addresses.AddressRefused.MESSAGE  # what it resolved to stays in the log


async def test_creating_refuses_bad_urls_and_more_than_ten_endpoints(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    refused = await client.post("/v1/webhook-endpoints", json={"url": "https://10.0.0.1/x"}, headers=key(customer))
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_webhook_url"
    assert "private" in refused.json()["detail"]
    for bad in (
        {"url": "https://example.com/x", "event_types": ["nope"]},
        {"url": 5},
        {},
    ):
        assert (await client.post("/v1/webhook-endpoints", json=bad, headers=key(customer))).status_code == 422
    for n in range(10):
        await create_endpoint(client, customer, f"https://example.com/{n}")
    eleventh = await client.post("/v1/webhook-endpoints", json={"url": "https://example.com/x"}, headers=key(customer))
    assert eleventh.status_code == 409
    assert eleventh.json()["code"] == "too_many_webhook_endpoints"
    listed = (await client.get("/v1/webhook-endpoints", headers=key(customer))).json()["data"]
    assert len(listed) == 10
    assert all("secret" not in e for e in listed)


async def test_endpoints_are_the_accounts_own(client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
    owner, other = await make_customer(), await make_customer()
    endpoint = await create_endpoint(client, owner, "https://example.com/mine")
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("GET", "/deliveries"),
        ("POST", "/resend-failed"),
    ):
        response = await client.request(
            method,
            f"/v1/webhook-endpoints/{endpoint['id']}{path}",
            headers=key(other),
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "webhook_endpoint_not_found"
    assert (await client.get("/v1/webhook-endpoints")).status_code == 401


async def test_patch_changes_only_what_it_names(client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
    customer = await make_customer()
    endpoint = await create_endpoint(
        client, customer, "https://example.com/a", event_types=["payment.created"], description="prod"
    )
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    changed = (await client.patch(path, json={"enabled": False}, headers=key(customer))).json()
    assert (changed["enabled"], changed["event_types"], changed["description"]) == (False, ["payment.created"], "prod")
    changed = (await client.patch(path, json={"event_types": []}, headers=key(customer))).json()
    assert changed["event_types"] is None  # an empty list: every type
    changed = (await client.patch(path, json={"event_types": ["order.progress"]}, headers=key(customer))).json()
    assert changed["event_types"] == ["order.progress"]
    changed = (await client.patch(path, json={"event_types": None}, headers=key(customer))).json()
    assert changed["event_types"] is None  # null too
    bad = await client.patch(path, json={"url": "https://192.168.0.1/"}, headers=key(customer))
    assert bad.status_code == 422
    assert (await client.get(path, headers=key(customer))).json()["url"] == "https://example.com/a"
    assert (await client.delete(path, headers=key(customer))).status_code == 204
    assert (await client.get(path, headers=key(customer))).status_code == 404


async def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="10.00")
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
    old = endpoint["secret"]
    rotated = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=key(customer))
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.json()["previous_secret_expires"] is not None
    await place(client, customer)
    await deliver(lambda: len(receiver.received) >= 1)
    (during,) = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    during.verified_with(old)  # a receiver not yet switched
    during.verified_with(new)  # and one that has

    async with sessionmaker.begin() as session:  # the day of overlap is over
        await session.execute(
            sa.text("UPDATE webhook_endpoints SET previous_secret_until = now() WHERE public_id = :p"),
            {"p": endpoint["id"]},
        )
    await place(client, customer)
    await deliver(lambda: len(receiver.received) >= 2)
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    after.verified_with(new)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


async def test_secrets_are_sealed_at_rest(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    endpoint = await create_endpoint(client, customer, "https://example.com/s")
    async with sessionmaker() as session:
        stored = await session.scalar(
            sa.text("SELECT secret FROM webhook_endpoints WHERE public_id = :p"), {"p": endpoint["id"]}
        )
    assert stored is not None
    assert endpoint["secret"] not in stored
    assert stored.startswith("v1.")
    async with sessionmaker() as session:
        row = await webhooks.get_endpoint(session, account_id=customer.account_id, public_id=endpoint["id"])
    assert webhooks.signing_secrets(keyring(sender_settings()), row, webhooks.utc_now()) == [endpoint["secret"]]


async def test_creating_with_an_idempotency_key_replays_the_same_endpoint_and_secret(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    headers = {**key(customer), "Idempotency-Key": "create-hook-1"}
    body = {"url": "https://example.com/idem"}
    first = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
    again = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len((await client.get("/v1/webhook-endpoints", headers=key(customer))).json()["data"]) == 1


async def test_resend_one_and_every_failed_delivery(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    receiver: Receiver,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="10.00")
    endpoint = await create_endpoint(client, customer, receiver.url, event_types=["order.created"])
    for _ in range(2):
        await place(client, customer)
    await deliver(lambda: len(receiver.received) >= 2)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    listed = (await client.get(f"{path}/deliveries", headers=key(customer))).json()["data"]
    first = listed[-1]
    again = await client.post(f"{path}/deliveries/{first['id']}/resend", headers=key(customer))
    assert again.status_code == 201
    assert (again.json()["resend_of"], again.json()["status"]) == (first["id"], "pending")
    busy = await client.post(f"{path}/deliveries/{again.json()['id']}/resend", headers=key(customer))
    assert busy.status_code == 409
    assert busy.json()["code"] == "webhook_delivery_pending"
    await deliver(lambda: len(receiver.received) >= 3)
    assert receiver.received[2].headers["webhook-id"] == receiver.received[0].headers["webhook-id"]

    async with sessionmaker.begin() as session:  # both given up (as after 3 days of failures)
        await session.execute(
            sa.text("UPDATE webhook_deliveries SET status = 'failed' WHERE endpoint_id ="
                    " (SELECT id FROM webhook_endpoints WHERE public_id = :p) AND resend_of IS NULL"),
            {"p": endpoint["id"]},
        )  # fmt: skip
    resent = await client.post(f"{path}/resend-failed", headers=key(customer))
    assert resent.json() == {"resent": 1}  # the first was sent again already (and succeeded)
    assert (await client.post(f"{path}/resend-failed", headers=key(customer))).json() == {"resent": 0}
    assert (await client.get(f"{path}/deliveries/999999999", headers=key(customer))).status_code == 404


async def test_an_endpoint_failing_for_five_days_is_disabled_and_its_owner_told(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
    deliver: Deliver,
) -> None:
    customer = await make_customer(balance="10.00")
    # Port 9 (discard): nothing listens, every attempt is refused.
    endpoint = await create_endpoint(client, customer, "http://127.0.0.1:9/never", event_types=["order.created"])
    await place(client, customer)
    await deliver(rounds=2)
    async with sessionmaker.begin() as session:  # its first failure was 5 days ago
        await session.execute(
            sa.text("UPDATE webhook_endpoints SET failing_since = now() - interval '5 days' WHERE public_id = :p"),
            {"p": endpoint["id"]},
        )
        await session.execute(
            sa.text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id ="
                    " (SELECT id FROM webhook_endpoints WHERE public_id = :p)"),
            {"p": endpoint["id"]},
        )  # fmt: skip
    await deliver(rounds=2)
    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=key(customer))).json()
    assert shown["enabled"] is False
    assert "5 days" in shown["disabled_reason"]
    async with sessionmaker() as session:
        subjects = (
            (
                await session.execute(
                    sa.text("SELECT subject FROM outbox WHERE to_email = :e AND purpose = 'account'"),
                    {"e": customer.email},
                )
            )
            .scalars()
            .all()
        )
    assert subjects == ["A webhook endpoint of your ordersvc account was disabled"]
    enabled = (
        await client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=key(customer))
    ).json()
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["failing_since"]) == (True, None, None)
