"""Settings: one instance, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("ordersvc")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERSVC_", env_file=".env", extra="ignore")

    # `DATABASE_URL` (no prefix) is the conventional name; when it is unset an embedded
    # PostgreSQL is started with its data in `data_dir`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ORDERSVC_DATABASE_URL")
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    environment: Literal["development", "production", "test"] = "development"

    host: str = "127.0.0.1"
    port: int = 8000

    # Connection pool per server process.
    db_pool_size: int = 10
    db_max_overflow: int = 20

    # The legacy action API refuses larger bodies with `Invalid params.`.
    legacy_max_body_bytes: int = 64 * 1024


@lru_cache
def get_settings() -> Settings:
    return Settings()
