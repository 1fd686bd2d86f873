from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.deposits.models import BonusTier, Deposit, DepositAddress, Network
from ordersvc.deposits.service import format_percent
from ordersvc.money import format_usd
from ordersvc.schemas import MoneyStr


class DepositAddressOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"network": "USDT-TRC20", "address": "TQ5Nf3ywwTbnJmV3Cg1Vv8x5xQmQ4bH9k2"}]}
    )

    network: Network
    address: str = Field(description="Send only this network's asset to this address.")

    @classmethod
    def of(cls, address: DepositAddress) -> DepositAddressOut:
        return cls(network=Network(address.network), address=address.address)


class DepositAddressList(BaseModel):
    data: list[DepositAddressOut] = Field(description="Addresses assigned so far, one per network.")


class DepositOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "network": "USDT-TRC20",
                    "amount": "250.00",
                    "bonus": "12.50",
                    "tx_hash": "9f2c...e1",
                    "created": "2026-01-22T10:00:00Z",
                }
            ]
        }
    )

    id: int = Field(description="Deposit id; also the cursor for `starting_after` / `ending_before`.")
    network: str | None
    amount: MoneyStr
    bonus: MoneyStr = Field(description="The tier bonus credited with this deposit (`0.00` when none).")
    tx_hash: str | None
    created: datetime

    @classmethod
    def of(cls, deposit: Deposit) -> DepositOut:
        assert deposit.id is not None
        assert deposit.created_at is not None
        return cls(
            id=deposit.id,
            network=deposit.network,
            amount=format_usd(deposit.amount_mills),
            bonus=format_usd(deposit.bonus_mills),
            tx_hash=deposit.tx_hash,
            created=deposit.created_at,
        )


class DepositList(BaseModel):
    data: list[DepositOut] = Field(description="Newest first.")
    has_more: bool


class BonusTierOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"threshold": "100.00", "percent": "5"}]})

    threshold: MoneyStr = Field(description="A deposit of at least this many USD earns the tier.")
    percent: str = Field(pattern=r"^[0-9]+(\.[0-9]{1,2})?$", description="Bonus percentage, as a decimal string.")

    @classmethod
    def of(cls, tier: BonusTier) -> BonusTierOut:
        return cls(threshold=format_usd(tier.threshold_mills), percent=format_percent(tier.basis_points))


class BonusTierList(BaseModel):
    data: list[BonusTierOut] = Field(description="Lowest threshold first; the highest tier reached applies.")
