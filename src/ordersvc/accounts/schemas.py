from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ordersvc.accounts.models import Account, ApiKey
from ordersvc.money import format_usd
from ordersvc.schemas import Currency, MoneyStr

ACCOUNT_EXAMPLE: dict[str, JsonValue] = {
    "email": "alice@example.com",
    "created": "2026-01-22T10:00:00Z",
    "balance": "125.50",
    "currency": "USD",
}
SESSION_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "created": "2026-01-22T10:00:00Z",
    "last_seen": "2026-01-22T10:30:00Z",
    "expires": "2026-02-21T10:00:00Z",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0",
    "ip": "203.0.113.7",
    "current": True,
}


class AccountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ACCOUNT_EXAMPLE]})

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
        json_schema_extra={
            "examples": [
                {"prefix": "osk_Ab3dE6gH", "name": "production", "created": "2026-01-22T10:00:00Z", "revoked": None}
            ]
        }
    )

    prefix: str = Field(description="The key's first 12 characters: how it is listed and revoked.")
    name: str = Field(default="", description="The name given at creation (may be empty).")
    created: datetime
    revoked: datetime | None = Field(description="When it was revoked; null while it is active.")

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        assert key.created_at is not None
        return cls(prefix=key.prefix, name=key.name, created=key.created_at, revoked=key.revoked_at)


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100, description='What the key is for, e.g. "production server".')


class ApiKeyCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prefix": "osk_Ab3dE6gH",
                    "name": "production",
                    "api_key": "osk_Ab3dE6gHiJkLmNoPqRsTuVwXyZ0123456789abcdefg",
                    "created": "2026-01-22T10:00:00Z",
                }
            ]
        }
    )

    prefix: str
    name: str = ""
    api_key: str = Field(description="The whole key. Shown only in this response: store it now.")
    created: datetime


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]


# Self-service sign-in -----------------------------------------------------------------------------

_Password = Field(min_length=1, max_length=1024, description="At least 10 characters, not a common password.")


class SignupIn(BaseModel):
    """No password here: it is chosen from the emailed link (`POST /v1/auth/verify-email`), so
    nobody can set one for an address they do not read."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"email": "alice@example.com"}]})

    email: str = Field(max_length=320)


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)


class VerifyEmailIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"token": "b1Yx0hQ8r3m2Zk5nL7pV9sT4wC6eA0dF2gH8jK1lM3o", "password": "a long passphrase"}]
        },
    )

    token: str = Field(max_length=200, description="The token from the emailed link.")
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A new account's link: the password chosen now, required (422 `password_required` "
        "without it). A new address's link (email change): leave it out.",
    )


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(max_length=200, description="The token from the emailed link.")
    password: str = _Password
    revoke_api_keys: bool = Field(
        default=False,
        description="Also revoke every active API key of the account (when someone else may have used "
        "it). Every browser session ends in any case.",
    )


class LoginIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "alice@example.com", "password": "a long passphrase"}]},
    )

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(
        default=None,
        max_length=32,
        description="Once two-factor sign-in is on: the app's 6-digit code, or an unused recovery code.",
    )


class Accepted(BaseModel):
    """The same answer whatever the address (no account enumeration)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"message": "If the address can be used, a message with a link is on its way to it."}]
        }
    )

    message: str


class SessionCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account": ACCOUNT_EXAMPLE,
                    "csrf_token": "Yq3vJm1f6c2wNQ0mB5ZrIh8TtXc9aKd7",
                    "expires": "2026-02-21T10:00:00Z",
                }
            ]
        }
    )

    account: AccountOut
    csrf_token: str = Field(
        description="Send it as `X-CSRF-Token` with every change made with the session cookie "
        "(it is also in the `ordersvc_csrf` cookie)."
    )
    expires: datetime


class SessionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SESSION_EXAMPLE]})

    id: int
    created: datetime
    last_seen: datetime
    expires: datetime
    user_agent: str
    ip: str
    current: bool = Field(description="The session this request was made with.")


class SessionList(BaseModel):
    data: list[SessionOut]


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = _Password


class EmailChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_email: str = Field(max_length=320)


class CurrentPasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)


class TotpStarted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/ordersvc:user%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=ordersvc",
                }
            ]
        }
    )

    secret: str = Field(description="Base32, for typing into the app by hand.")
    otpauth_uri: str = Field(description="Show it as a QR code for the app to scan.")


class TotpCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=16)


# Not `RecoveryCodes`: openapi-python-client names a local variable after the model, which then
# collides with its field `recovery_codes` (the generated package failed mypy --strict).
class RecoveryCodeList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"recovery_codes": ["k7dq-2mzp-9xwa", "r3vh-8fte-1gqc"]}]}
    )

    recovery_codes: list[str] = Field(description="Shown this once. Each signs in once instead of a code.")


class SecurityOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "user@example.com", "email_verified": True, "has_password": True, "totp_enabled": False}
            ]
        }
    )

    email: str
    email_verified: bool
    has_password: bool
    totp_enabled: bool
