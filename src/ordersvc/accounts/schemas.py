from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.accounts.models import Account, ApiKey
from ordersvc.money import format_usd
from ordersvc.schemas import Currency, MoneyStr


class AccountOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "alice@example.com",
                    "created": "2026-01-22T10:00:00Z",
                    "balance": "125.50",
                    "currency": "USD",
                }
            ]
        }
    )

    email: str
    created: datetime
    balance: MoneyStr
    currency: Currency = "USD"

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        assert account.created_at is not None
        return cls(email=account.email, created=account.created_at, balance=format_usd(account.balance_mills))


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prefix": "osk_Ab3dE6gH", "created": "2026-01-22T10:00:00Z", "revoked": None}]}
    )

    prefix: str = Field(description="The key's first 12 characters: how it is listed and revoked.")
    created: datetime
    revoked: datetime | None = Field(description="When it was revoked; null while it is active.")

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        assert key.created_at is not None
        return cls(prefix=key.prefix, created=key.created_at, revoked=key.revoked_at)


class ApiKeyCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prefix": "osk_Ab3dE6gH",
                    "api_key": "osk_Ab3dE6gHiJkLmNoPqRsTuVwXyZ0123456789abcdefg",
                    "created": "2026-01-22T10:00:00Z",
                }
            ]
        }
    )

    prefix: str
    api_key: str = Field(description="The whole key. Shown only in this response: store it now.")
    created: datetime


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]
