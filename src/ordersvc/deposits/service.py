"""Money in: processor events credited exactly once, and bonus tiers (the address pool is
`addresses`)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ordersvc.accounts import service as accounts_service
from ordersvc.audit import service as audit
from ordersvc.audit.service import Actor
from ordersvc.deposits import repository
from ordersvc.deposits.hashes import InvalidTxHash, hex_digits, normalise_address, normalise_tx_hash
from ordersvc.deposits.models import (
    BonusTier,
    Deposit,
    DepositAddressRelease,
    DepositStatus,
    Network,
    ProcessorEvent,
)
from ordersvc.errors import Conflict, InvalidParams, NotFound, ServiceError
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.money import format_usd
from ordersvc.ops import metrics
from ordersvc.pagination import (
    DEFAULT_LIMIT,
    MAX_ID,
    CursorPage,
    CursorRequest,
    InvalidCursor,
    fetch_cursor_page,
    stream_by_id,
)
from ordersvc.text import clean_text
from ordersvc.timestamps import utc_now

logger = logging.getLogger(__name__)

_PERCENT = re.compile(r"^(?P<value>[0-9]{1,3}(?:\.[0-9]{1,2})?)\s*%?$")


class UnknownNetwork(NotFound):
    code = "unknown_network"
    message = f"Unknown network. Networks: {', '.join(n.value for n in Network)}."


class InvalidBonusTier(InvalidParams):
    code = "invalid_bonus_tier"
    message = "A bonus tier is a threshold above 0 USD and a percentage above 0 and at most 100 (e.g. 5%, 2.5%)."


class BonusTierNotFound(NotFound):
    message = "No bonus tier with that threshold."


class DepositNotFound(NotFound):
    message = "No such deposit."


class DepositNotUnmatched(Conflict):
    code = "deposit_not_unmatched"
    message = "That deposit is already credited."


class TransferAlreadyCredited(Conflict):
    code = "transfer_already_credited"
    message = "That deposit's on-chain transfer is already credited as another deposit."


def parse_network(text: str) -> Network:
    try:
        return Network(text.upper())
    except ValueError:
        raise UnknownNetwork() from None


def parse_percent(text: str) -> int:
    """`5%`, `5`, `2.5%`, `0.01%` -> basis points (hundredths of a percent)."""
    match = _PERCENT.match(text.strip())
    if match is None:
        raise InvalidBonusTier()
    basis_points = int(Decimal(match["value"]) * 100)
    if not 0 < basis_points <= 10_000:
        raise InvalidBonusTier()
    return basis_points


def format_percent(basis_points: int) -> str:
    """500 -> `5`, 250 -> `2.5`, 1 -> `0.01`."""
    whole, frac = divmod(basis_points, 100)
    return f"{whole}" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")


def bonus_mills(amount_mills: int, basis_points: int) -> int:
    """The bonus of a deposit, rounded down to the mill."""
    return amount_mills * basis_points // 10_000


def usd_to_mills(value: Any) -> int | None:
    """A processor's USD amount (number or decimal string) in mills, rounded down so that we
    never credit more than was received. None when it is not a positive finite amount."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0 or not -18 <= amount.adjusted() <= 12:
        return None
    mills = int((amount * 1000).to_integral_value(rounding="ROUND_DOWN"))
    return mills if mills > 0 else None


def clean_payload(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_payload(v) for v in value]
    return value


# Bonus tiers -------------------------------------------------------------------------------


async def set_bonus_tier(session: AsyncSession, *, threshold_mills: int, basis_points: int) -> BonusTier:
    if threshold_mills <= 0 or not 0 < basis_points <= 10_000:
        raise InvalidBonusTier()
    return await repository.upsert_tier(session, threshold_mills, basis_points)


async def remove_bonus_tier(session: AsyncSession, *, threshold_mills: int) -> None:
    if not await repository.delete_tier(session, threshold_mills):
        raise BonusTierNotFound()


async def list_bonus_tiers(session: AsyncSession) -> list[BonusTier]:
    return await repository.list_tiers(session)


# Deposits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositEvent:
    """A final, paid deposit as a processor reported it, already verified and parsed."""

    processor: str
    external_id: str
    amount_mills: int
    payload: dict[str, Any]
    network: str | None = None
    address: str | None = None
    tx_hash: str | None = None
    # The processor names the account itself (BTCPay invoice metadata); else the address does.
    account_email: str | None = None


@dataclass(frozen=True, slots=True)
class DepositOutcome:
    status: str  # "credited", "unmatched" or "duplicate"
    deposit_id: int | None


async def record_deposit(session: AsyncSession, event: DepositEvent) -> DepositOutcome:
    """Record a processor's event and credit it (with its bonus) exactly once, in the caller's
    transaction. A redelivery, concurrent or not, finds the event recorded and credits nothing.
    An event for an address no account owns is kept as unmatched for the operator.

    The transaction hash and the address are stored in their network's canonical form
    (`hashes`), whichever processor reported them and however it spelt them: the on-chain unique
    key then sees one transfer once, and the address finds its owner. A hash that is not one of
    its network's is refused (422), nothing stored."""
    event = replace(event, address=normalise_address(event.network, event.address))
    try:
        tx_hash = normalise_tx_hash(event.network, event.tx_hash)
    except InvalidTxHash:
        logger.warning(
            "deposit %s/%s refused: its tx hash is not one of %s; nothing stored",
            event.processor, event.external_id, event.network,
        )  # fmt: skip
        raise
    deposit = await repository.insert_deposit(
        session,
        {
            "processor": event.processor,
            "external_id": event.external_id,
            "network": event.network,
            "address": event.address,
            "tx_hash": tx_hash,
            "amount_mills": event.amount_mills,
            "status": DepositStatus.UNMATCHED.value,
            "payload": clean_payload(event.payload),
        },
    )
    if deposit is None:
        await _warn_if_amount_differs(session, event)
        await log_event(session, event.processor, event.external_id, "duplicate")
        return DepositOutcome("duplicate", None)
    assert deposit.id is not None
    account_id = await _owner(session, event)
    if account_id is None:
        former = await _former_holder(session, event)
        logger.warning(
            "unmatched deposit %s from %s: %s mills on %s to %s%s", deposit.id, event.processor,
            event.amount_mills, event.network, event.address,
            f" (recycled from account {former.account_id} on {former.released_at:%Y-%m-%d})" if former else "",
        )  # fmt: skip
        await log_event(session, event.processor, event.external_id, "unmatched", deposit_id=deposit.id)
        return DepositOutcome("unmatched", deposit.id)
    await _credit(session, deposit, account_id)
    await log_event(session, event.processor, event.external_id, "credited", deposit_id=deposit.id)
    return DepositOutcome("credited", deposit.id)


async def log_event(
    session: AsyncSession,
    processor: str,
    external_id: str | None,
    outcome: str,
    *,
    deposit_id: int | None = None,
    detail: str | None = None,
) -> None:
    """One signed processor event and its outcome (`ProcessorEvent`), in the caller's transaction."""
    session.add(
        ProcessorEvent(
            processor=processor,
            external_id=None if external_id is None else clean_text(external_id[:200]),
            outcome=outcome,
            deposit_id=deposit_id,
            detail=None if detail is None else clean_text(detail[:500]),
        )
    )
    await session.flush()


async def log_refused(maker: async_sessionmaker[AsyncSession], processor: str, code: str) -> None:
    """A signed event refused (the request's transaction rolls back): logged in one of its own."""
    async with maker.begin() as session:
        await log_event(session, processor, None, "refused", detail=code)


async def page_events(
    session: AsyncSession, *, outcome: str | None, request: CursorRequest
) -> CursorPage[ProcessorEvent]:
    stmt = sa.select(ProcessorEvent)
    if outcome is not None:
        stmt = stmt.where(col(ProcessorEvent.outcome) == outcome)
    rows, has_more = await fetch_cursor_page(session, stmt, col(ProcessorEvent.id), request)
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


async def _warn_if_amount_differs(session: AsyncSession, event: DepositEvent) -> None:
    """A redelivery is credited nothing; one that reports another amount is logged for the
    operator (e.g. a NOWPayments payment that went from partially_paid to finished)."""
    recorded = await repository.recorded_amount(session, event.processor, event.external_id)
    if recorded is not None and recorded != event.amount_mills:
        logger.warning(
            "deposit %s/%s redelivered with amount %s mills, recorded %s: not credited again; check it",
            event.processor, event.external_id, event.amount_mills, recorded,
        )  # fmt: skip


async def _owner(session: AsyncSession, event: DepositEvent) -> int | None:
    if event.account_email is not None:
        try:
            return (await accounts_service.get_account_by_email(session, email=event.account_email)).id
        except ServiceError:  # unknown or malformed: kept unmatched for the operator
            return None
    if event.network is not None and event.address is not None:
        return await repository.owner_of_address(session, event.network, event.address)
    return None


async def _former_holder(session: AsyncSession, event: DepositEvent) -> DepositAddressRelease | None:
    if event.network is None or event.address is None:
        return None
    return await repository.former_holder(session, event.network, event.address)


async def former_holders(session: AsyncSession, deposits: list[Deposit]) -> dict[int, DepositAddressRelease]:
    """For the operator: the account each unmatched deposit's address was recycled from."""
    found: dict[int, DepositAddressRelease] = {}
    for deposit in deposits:
        if deposit.id is not None and deposit.network is not None and deposit.address is not None:
            release = await repository.former_holder(session, deposit.network, deposit.address)
            if release is not None:
                found[deposit.id] = release
    return found


async def is_recorded(session: AsyncSession, *, processor: str, external_id: str) -> bool:
    return await repository.deposit_exists(session, processor, external_id)


async def _credit(session: AsyncSession, deposit: Deposit, account_id: int) -> None:
    """The deposit's payment and its bonus payment, linked to it, in one transaction."""
    assert deposit.id is not None
    await ledger.post_payment(
        session, account_id=account_id, kind=PaymentKind.DEPOSIT, amount_mills=deposit.amount_mills,
        deposit_id=deposit.id,
    )  # fmt: skip
    tier = await repository.best_tier_for(session, deposit.amount_mills)
    bonus = bonus_mills(deposit.amount_mills, tier.basis_points) if tier is not None else 0
    if bonus > 0:
        await ledger.post_payment(
            session, account_id=account_id, kind=PaymentKind.BONUS, amount_mills=bonus, deposit_id=deposit.id
        )
    await repository.mark_credited(session, deposit.id, account_id, bonus, utc_now())
    metrics.count_after_commit(session, metrics.DEPOSITS_CREDITED.inc)


async def assign_unmatched(session: AsyncSession, *, deposit_id: int, email: str, actor: Actor) -> Deposit:
    """The operator (`actor`: the console's, or the CLI's) credits an unmatched deposit (with the
    bonus of the tiers in force now) to the account with this email; audited."""
    if not 1 <= deposit_id <= MAX_ID:
        raise DepositNotFound()
    deposit = await repository.get_deposit_for_update(session, deposit_id)
    if deposit is None:
        raise DepositNotFound()
    if deposit.status != DepositStatus.UNMATCHED.value:
        raise DepositNotUnmatched()
    await _refuse_if_transfer_credited(session, deposit)
    account = await accounts_service.get_account_by_email(session, email=email)
    assert account.id is not None
    await _credit(session, deposit, account.id)
    await session.refresh(deposit)
    await audit.record(
        session, actor, "deposit.assign", object_type="deposit", object_id=deposit_id, before={"status": "unmatched"},
        after={"status": deposit.status, "account_id": deposit.account_id, "amount": format_usd(deposit.amount_mills),
               "bonus": format_usd(deposit.bonus_mills)},
    )  # fmt: skip
    return deposit


async def _refuse_if_transfer_credited(session: AsyncSession, deposit: Deposit) -> None:
    """An unmatched deposit that is a transfer already credited (its hash or address spelt
    otherwise, e.g. a row from before migration 0012) is not credited a second time."""
    if deposit.id is None or deposit.network is None or deposit.tx_hash is None or deposit.address is None:
        return
    other = await repository.credited_same_transfer(
        session, deposit_id=deposit.id, network=deposit.network, tx_hash=deposit.tx_hash,
        hex_digits=hex_digits(deposit.network, deposit.tx_hash),
        address=deposit.address,
    )  # fmt: skip
    if other is not None:
        raise TransferAlreadyCredited(
            f"Deposit {deposit.id} is the on-chain transfer already credited as deposit {other}: not credited again."
        )


async def unmatched_deposits(session: AsyncSession) -> list[Deposit]:
    return await repository.unmatched_deposits(session)


async def hash_collisions(session: AsyncSession) -> list[tuple[str, Deposit]]:
    """What migration 0012 could not normalise without merging: (canonical hash, deposit)."""
    return await repository.hash_collisions(session)


async def page_deposits(
    session: AsyncSession,
    *,
    account_id: int,
    limit: int = DEFAULT_LIMIT,
    starting_after: int | None = None,
    ending_before: int | None = None,
) -> CursorPage[Deposit]:
    """The account's credited deposits, newest first; cursors are deposit ids."""
    CursorRequest.check_one_direction(starting_after, ending_before)
    for cursor in (starting_after, ending_before):
        if cursor is not None and not await repository.deposit_of_account_exists(session, account_id, cursor):
            raise InvalidCursor()
    request = CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before)
    items, has_more = await repository.deposits_page(session, account_id, request)
    return CursorPage(items=items, has_more=has_more)


def export_deposits(session: AsyncSession, *, account_id: int) -> AsyncIterator[Deposit]:
    """The account's credited deposits, newest first, streamed (`GET /v1/deposits/export`)."""
    stmt = sa.select(Deposit).where(
        col(Deposit.account_id) == account_id, col(Deposit.status) == DepositStatus.CREDITED.value
    )
    return stream_by_id(session, stmt, col(Deposit.id))
