"""Settings: one instance, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ordersvc.keyring import strength_problem


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("ordersvc")


class Settings(BaseSettings):
    # Inputs are left out of validation errors: many settings are secrets (keys, URLs with passwords).
    model_config = SettingsConfigDict(
        env_prefix="ORDERSVC_", env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    # `DATABASE_URL` (no prefix) is the conventional name; when it is unset an embedded
    # PostgreSQL is started with its data in `data_dir`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ORDERSVC_DATABASE_URL")
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    environment: Literal["development", "production", "test"] = "development"

    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses or networks, or
    # "*"). The client address keys the per-address throttles of sign-up, sign-in and mail.
    # Unset: uvicorn's own FORWARDED_ALLOW_IPS, else loopback (127.0.0.1,::1).
    forwarded_allow_ips: str | None = None
    # Where recipients reach this service: the base of the links in mail. Unset: where this
    # service listens (`host` and `port`, which `serve --host/--port` set); production requires it.
    public_url: str = ""
    # Signs the consent links and CSRF tokens, and encrypts the TOTP secrets (keyring.py). Unset: a
    # secret generated on first start, kept in `data_dir/secret_key`; production requires it set.
    secret_key: SecretStr | None = None
    # Earlier secrets, still accepted after a rotation (comma-separated or a JSON list).
    secret_key_fallbacks: Annotated[list[SecretStr], NoDecode] = []

    # Outgoing mail (consent messages only). Unset: messages stay in the outbox
    # (`ordersvc outbox list`). smtp://user:pass@host:25, smtp+starttls://..., smtps://...:465
    smtp_url: str | None = Field(default=None, validation_alias=AliasChoices("SMTP_URL", "ORDERSVC_SMTP_URL"))
    mail_from: str = "ordersvc <no-reply@localhost>"
    consent_link_hours: int = 72
    consent_mail_interval_hours: int = 24
    # How often the background mailer looks at the outbox and consent requests (seconds).
    mailer_interval_seconds: float = 5.0
    # `serve` runs the mailer in the background (turn off when `ordersvc mailer` runs apart).
    mailer_in_serve: bool = True

    # Outbound webhooks (`webhooks.sender`): `serve` runs the sender in the background (turn off
    # when `ordersvc webhooks` runs apart); how often it looks for events and due retries (seconds);
    # the first retry's delay, doubled for each later one (with jitter), up to 6 hours.
    webhooks_in_serve: bool = True
    webhooks_interval_seconds: float = Field(default=1.0, gt=0)
    webhooks_retry_base_seconds: float = Field(default=5.0, gt=0)
    # Development only: endpoints on this machine (http:// and https:// to loopback addresses).
    # Every other private, loopback, link-local, multicast or metadata address is always refused.
    webhooks_allow_loopback: bool = False
    # How long one live event stream lasts before the server ends it (the client reconnects with
    # Last-Event-ID): below a proxy's read timeout, and short enough that a draining server is free.
    events_stream_seconds: float = Field(default=300.0, ge=1, le=3600)

    # Connection pool per server process: at most pool_size + max_overflow connections; a request
    # waits up to pool_timeout seconds for one.
    db_pool_size: int = 10
    db_max_overflow: int = 20
    db_pool_timeout_seconds: float = 10.0
    # CSV exports streaming at once per server process (customers' and operators' apart: as many
    # of each), and per account or operator: each holds a pooled connection (and its snapshot)
    # while its client reads. More: 503 `exports_busy`, or 429 `too_many_exports` for the one caller.
    export_max_concurrent: int = Field(default=4, ge=1)
    export_max_per_caller: int = Field(default=2, ge=1)
    # Server-side limits on every connection: a statement, and a transaction left idle.
    db_statement_timeout_ms: int = 10_000
    db_idle_in_transaction_timeout_ms: int = 60_000

    # Logs: one JSON object per line (`json`) or readable text (`console`).
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    # Prometheus metrics at /metrics (off unless set: the route is on the public port).
    metrics_enabled: bool = Field(
        default=False, validation_alias=AliasChoices("ORDERSVC_METRICS", "ORDERSVC_METRICS_ENABLED")
    )

    # Per-API-key rate limit (token bucket): `rate_limit_per_second` refill, `rate_limit_burst`
    # size; 0 turns it off. Shared by every replica through Redis when REDIS_URL is set.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "ORDERSVC_REDIS_URL"))

    # Request limits: body size (the legacy API has its own, below), time to answer.
    max_body_bytes: int = 1024 * 1024
    request_timeout_seconds: float = 30.0
    # A request head (request line and headers) not complete this long after its connection
    # opened, or after the previous answer on it ended, closes the connection (408 when part of
    # a head came). Open connections per server process beyond `max_connections` get 503 at once.
    head_timeout_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    # On SIGTERM, in-flight requests get this long to finish.
    shutdown_grace_seconds: float = 20.0

    # Browser sessions: the cookie's Secure flag. Unset: on when `public_url` is https://; set
    # false only to sign in over plain http on a development machine.
    session_cookie_secure: bool | None = None
    # Operator sessions (the console at /admin): ended after this long without a request, and in
    # any case this long after sign-in. The link `operators create` prints lives this long.
    operator_idle_minutes: int = Field(default=30, ge=1)
    operator_session_hours: int = Field(default=12, ge=1)
    operator_link_hours: int = Field(default=24, ge=1)
    # An open order with no progress for this long is "stuck" in the console.
    stuck_order_minutes: int = Field(default=60, ge=1)

    # Browser origins allowed to call the REST API (CORS), e.g. the dashboard's. None by default.
    # As a JSON list or comma-separated: ORDERSVC_CORS_ORIGINS=https://app.example.com
    cors_origins: Annotated[list[str], NoDecode] = []

    @field_validator("cors_origins", "chain_webhook_secrets", "secret_key_fallbacks", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [o.strip() for o in text.split(",") if o.strip()]
        return value

    # Webhook secrets of the deposit processors; a processor without one has its route disabled.
    btcpay_webhook_secret: str | None = None
    # BTCPay's InvoiceSettled carries no amount: the invoice is read back through the Greenfield
    # API (an API key with the "View invoices" permission).
    btcpay_url: str | None = None
    btcpay_api_key: str | None = None
    nowpayments_ipn_secret: str | None = None
    # The chain watcher's secrets: several during a rotation (comma-separated or a JSON list).
    chain_webhook_secrets: Annotated[list[str], NoDecode] = []
    chain_webhook_tolerance_seconds: int = 300
    # Confirmations after which a chain watcher deposit is final, per network.
    chain_confirmations: dict[str, int] = {"BTC": 2, "LTC": 6, "USDT-ERC20": 12, "USDT-TRC20": 20}
    # Deposit addresses that received nothing this many days after assignment go back to the pool
    # (`ordersvc deposits recycle`); fewer free addresses than the low water is logged.
    deposit_address_recycle_days: int = Field(default=30, ge=1)
    deposit_pool_low_water: int = Field(default=10, ge=0)

    # The legacy action API refuses larger bodies with `Invalid params.`.
    legacy_max_body_bytes: int = 64 * 1024

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _strong_secrets(self) -> Settings:
        if self.environment == "production" and self.webhooks_allow_loopback:
            raise ValueError("ORDERSVC_WEBHOOKS_ALLOW_LOOPBACK is for development: it must be off in production")
        if self.environment == "production" and self.secret_key is None:
            raise ValueError("ORDERSVC_SECRET_KEY must be set in production (32+ random characters)")
        named = [("ORDERSVC_SECRET_KEY", self.secret_key)] if self.secret_key is not None else []
        named += [("ORDERSVC_SECRET_KEY_FALLBACKS", s) for s in self.secret_key_fallbacks]
        for name, secret in named:
            if problem := strength_problem(secret.get_secret_value()):
                raise ValueError(f"{name} {problem}")
        return self

    @model_validator(mode="after")
    def _public_url_or_where_it_listens(self) -> Settings:
        # In production recipients are never on this machine's loopback, and one `serve` cannot
        # know of the replicas and the proxy in front: the address must be given.
        if not self.public_url.strip():
            if self.environment == "production":
                raise ValueError("ORDERSVC_PUBLIC_URL must be set in production: the address recipients reach it at")
            self.public_url = listening_url(self.host, self.port)
        return self


def listening_url(host: str, port: int) -> str:
    """The service's own address, for links when no public URL is set. A wildcard host (every
    interface) names loopback: the one address sure to reach it, from this machine."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
