"""The webhook sender, in `serve` and as `ordersvc webhooks`: each round dispatches the events
committed since the last one to deliveries, leases the endpoints whose next delivery is due, and
sends each endpoint's deliveries in order, one at a time, until one fails (it is retried later,
and nothing after it goes first). Any number of senders may run: the dispatch is one at a time,
an endpoint is leased to one sender, and a sender that dies leaves its deliveries to be sent
again when the lease runs out (at least once: receivers deduplicate by `webhook-id`).

A delivery is one POST with the event's JSON, signed (`signing`), to the address the endpoint's
host resolved to and was checked at (`addresses.resolve`); redirects are not followed; a 2xx
within TIMEOUT is success, anything else a failure. What the response said is kept (its status,
the first RESPONSE_KEPT_BYTES of its body), never interpreted. Nothing logged names the URL,
which may hold the customer's own token."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts.messages import send_account_message
from ordersvc.accounts.models import Account
from ordersvc.config import Settings
from ordersvc.events import service as events
from ordersvc.keyring import Keyring, UnsealError, keyring
from ordersvc.timestamps import utc_now
from ordersvc.webhooks import addresses, signing
from ordersvc.webhooks import service as webhooks

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
USER_AGENT = "ordersvc-webhooks/1"
# Endpoints delivered to at once by one sender, and how long it keeps at one endpoint per round
# (well inside the lease).
CONCURRENCY = 16
ENDPOINT_ROUND_SECONDS = 20.0
# Deliveries of one endpoint read (and their events rendered) at a time.
BATCH = 50
# Events read per dispatch transaction, and at most so many transactions per round. Short
# statements: with 3 endpoints per account, 2,000 events were 6,000 delivery rows in one INSERT,
# which held a core of the database long enough to push the order path's p99 over 100 ms
# (bench/README, "Webhooks and live events"); 200 at a time did not.
DISPATCH_BATCH = 200
DISPATCH_BATCHES = 500


def _host_header(host: str, port: int | None, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown if port in (None, default) else f"{shown}:{port}"


class Sender:
    """Sends deliveries, with no proxy from the environment. Each endpoint's turn (`turn`) has an
    HTTP client of its own: its connection is kept for that endpoint's next delivery, and goes to
    the address checked for it, with the TLS name of its own host; no connection is shared
    between endpoints."""

    def __init__(self, *, allow_loopback: bool, resolver: addresses.Resolver = addresses.system_resolver) -> None:
        self.allow_loopback = allow_loopback
        self.resolver = resolver
        self.tls = ssl.create_default_context()

    def turn(self) -> Turn:
        return Turn(self)

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> webhooks.Outcome:
        """One delivery on a connection of its own."""
        async with self.turn() as turn:
            return await turn.post(url, headers, body)


class Turn:
    """One endpoint's deliveries in a row: the host resolved (and checked) once, one connection."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._origin: tuple[str, str, int] | None = None
        self._address: str | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._forget()

    async def _forget(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._origin = self._address = self._client = None

    async def _connect(self, scheme: str, host: str, port: int) -> tuple[str, httpx.AsyncClient]:
        if self._origin != (scheme, host, port) or self._address is None or self._client is None:
            await self._forget()
            address = await addresses.resolve(
                host, port, allow_loopback=self._sender.allow_loopback, resolver=self._sender.resolver
            )
            self._client = httpx.AsyncClient(
                verify=self._sender.tls,
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(TIMEOUT_SECONDS),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            self._origin, self._address = (scheme, host, port), address
        return self._address, self._client

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> webhooks.Outcome:
        started = time.monotonic()

        def done(status: int | None, kept: str | None, error: str | None) -> webhooks.Outcome:
            return webhooks.Outcome(status, int((time.monotonic() - started) * 1000), kept, error)

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):  # from the look-up to the response's first 1 KB
                address, client = await self._connect(parts.scheme, host, port)
                pinned = f"[{address}]" if ":" in address else address
                target = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path or "/", parts.query, ""))
                request_headers = {
                    **headers,
                    "Host": _host_header(host, parts.port, parts.scheme),
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                }
                extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
                request = client.build_request(
                    "POST", target, headers=request_headers, content=body, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    kept = bytearray()
                    async for chunk in response.aiter_raw():
                        kept += chunk
                        if len(kept) >= webhooks.RESPONSE_KEPT_BYTES:
                            break
                finally:
                    await response.aclose()
        except addresses.AddressRefused as exc:
            logger.info("webhook delivery refused: %s", exc.detail)
            return done(None, None, str(exc))
        except TimeoutError:
            await self._forget()
            return done(None, None, f"no answer within {TIMEOUT_SECONDS:g} seconds")
        except httpx.HTTPError as exc:
            await self._forget()
            return done(None, None, f"{type(exc).__name__}: {exc}"[:500])
        except Exception as exc:  # whatever else sending raised is this attempt's failure, not the sender's
            await self._forget()
            logger.warning("webhook delivery failed unexpectedly", exc_info=True)
            return done(None, None, f"could not be sent ({type(exc).__name__})")
        text = bytes(kept[: webhooks.RESPONSE_KEPT_BYTES]).decode("utf-8", errors="replace")
        if 200 <= response.status_code < 300:
            return done(response.status_code, text, None)
        return done(response.status_code, text, f"HTTP {response.status_code}")


async def _attempt(keys: Keyring, turn: Turn, due: webhooks.Due, rendered: dict[str, Any] | None) -> webhooks.Outcome:
    """One attempt at the head delivery: what it came to, whatever went wrong (a delivery that
    cannot be sent is a failed attempt, retried and in the end failed, never a stuck queue)."""
    if rendered is None:  # what it names was deleted (never happens to orders or payments)
        return webhooks.Outcome(None, 0, None, "the event's object no longer exists")
    try:
        signers = webhooks.signing_secrets(keys, due.endpoint, utc_now())
    except UnsealError:
        signers = []
    if not signers:  # sealed under a service secret key no longer configured
        return webhooks.Outcome(None, 0, None, "the signing secret cannot be opened: rotate it")
    body = events.dumps(rendered).encode()
    headers = signing.headers(signers, rendered["id"], int(time.time()), body)
    return await turn.post(due.endpoint.url, headers, body)


async def _deliver_endpoint(
    maker: async_sessionmaker[AsyncSession], settings: Settings, keys: Keyring, sender: Sender, lease: webhooks.Lease
) -> int:
    """The endpoint's due deliveries, in order, until one fails or its turn's time is up; read
    BATCH at a time, each recorded as it is sent."""
    sent = 0
    started = time.monotonic()
    try:
        async with sender.turn() as turn:
            while time.monotonic() - started < ENDPOINT_ROUND_SECONDS:
                async with maker.begin() as session:
                    batch = await webhooks.due(session, endpoint_id=lease.endpoint_id, limit=BATCH)
                    rendered = await events.render(session, [d.event for d in batch]) if batch else {}
                if not batch:
                    break
                for item in batch:
                    outcome = await _attempt(keys, turn, item, rendered.get(item.event.id))
                    async with maker.begin() as session:
                        recorded = await webhooks.record(
                            session,
                            delivery_id=item.delivery.id or 0,
                            outcome=outcome,
                            retry_base_seconds=settings.webhooks_retry_base_seconds,
                            url=item.endpoint.url,
                        )
                        if recorded is not None and recorded.endpoint_disabled:
                            owner = await session.get(Account, item.endpoint.account_id)
                            if owner is not None:
                                await send_account_message(session, settings, owner.email, "webhook_disabled")
                    if recorded is None:
                        return sent
                    if not outcome.succeeded:
                        logger.info(
                            "webhook delivery %s to endpoint %s failed: %s",
                            item.delivery.id,
                            item.endpoint.public_id,
                            outcome.error,
                        )
                        return sent
                    sent += 1
                    if not recorded.unchanged or time.monotonic() - started >= ENDPOINT_ROUND_SECONDS:
                        return sent
    finally:
        async with maker.begin() as session:
            await webhooks.release(session, lease=lease)
    return sent


async def _dispatch(maker: async_sessionmaker[AsyncSession]) -> None:
    for _ in range(DISPATCH_BATCHES):  # caught up, or another sender is dispatching
        async with maker.begin() as session:
            dispatched = await webhooks.dispatch(session, limit=DISPATCH_BATCH)
        if dispatched is None or dispatched.read < DISPATCH_BATCH:
            break


async def _claim(maker: async_sessionmaker[AsyncSession], limit: int) -> list[webhooks.Lease]:
    async with maker.begin() as session:
        return await webhooks.claim_endpoints(session, limit=limit)


def _sent(task: asyncio.Task[int]) -> int:
    if task.cancelled():
        return 0
    if (error := task.exception()) is not None:
        logger.error("webhook delivery to an endpoint failed", exc_info=error)
        return 0
    return task.result()


async def run_round(maker: async_sessionmaker[AsyncSession], settings: Settings, keys: Keyring, sender: Sender) -> int:
    """Dispatch, then deliver to the endpoints that have something due (up to CONCURRENCY of
    them), and wait for all. Returns deliveries that succeeded. (`ordersvc webhooks --once`
    and tests; `run` keeps its slots filled instead.)"""
    await _dispatch(maker)
    leases = await _claim(maker, CONCURRENCY)
    if not leases:
        return 0
    tasks = [asyncio.create_task(_deliver_endpoint(maker, settings, keys, sender, lease)) for lease in leases]
    await asyncio.wait(tasks)
    return sum(_sent(task) for task in tasks)


# Events and deliveries past retention go once an hour; endpoints a race left without `due_at`
# are looked for every half minute; rounds are at least 50 ms apart.
PRUNE_INTERVAL_SECONDS = 3600.0
WAKE_INTERVAL_SECONDS = 30.0
MIN_ROUND_SECONDS = 0.05


async def run(
    maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    stop: asyncio.Event,
    *,
    resolver: addresses.Resolver = addresses.system_resolver,
) -> None:
    """Until `stop` is set: CONCURRENCY endpoints delivered to at once, each slot filled again as
    soon as its endpoint is done (a slow receiver holds one slot, not the round); a dispatch and
    a claim every `webhooks_interval_seconds`, and whenever a slot frees up."""
    keys = keyring(settings)
    sender = Sender(allow_loopback=settings.webhooks_allow_loopback, resolver=resolver)
    loop = asyncio.get_running_loop()
    prune_at = wake_at = loop.time()
    last_round = prune_at - MIN_ROUND_SECONDS
    busy: set[asyncio.Task[int]] = set()
    try:
        while not stop.is_set():
            # At most one dispatch and claim per MIN_ROUND_SECONDS, however often slots free up.
            await asyncio.sleep(max(0.0, last_round + MIN_ROUND_SECONDS - loop.time()))
            last_round = loop.time()
            try:
                await _dispatch(maker)
                if free := CONCURRENCY - len(busy):
                    for lease in await _claim(maker, free):
                        busy.add(asyncio.create_task(_deliver_endpoint(maker, settings, keys, sender, lease)))
                if loop.time() >= wake_at:
                    wake_at = loop.time() + WAKE_INTERVAL_SECONDS
                    async with maker.begin() as session:
                        await webhooks.wake_forgotten(session)
                if loop.time() >= prune_at:
                    prune_at = loop.time() + PRUNE_INTERVAL_SECONDS
                    async with maker.begin() as session:
                        await webhooks.prune(session)
            except Exception:
                logger.exception("webhook round failed; retrying")
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {*busy, stopping}, timeout=settings.webhooks_interval_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            stopping.cancel()
            for task in done - {stopping}:
                busy.discard(task)
                _sent(task)
    finally:
        if busy:  # each releases its lease as it ends
            for task in busy:
                task.cancel()
            await asyncio.wait(busy)
