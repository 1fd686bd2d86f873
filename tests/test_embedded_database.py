"""The README's first command on a machine with no database: `ordersvc serve` starts an
embedded PostgreSQL in ORDERSVC_DATA_DIR, and the CLI with the same directory shares it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from tests.support import run_cli, serve


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ORDERSVC_DATABASE_URL")}
    env["ORDERSVC_DATA_DIR"] = str(data_dir)
    return env


def test_server_and_cli_share_the_embedded_database(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")

    # The CLI alone starts the embedded server, migrates, and stops it again on exit.
    created = run_cli("accounts", "create", "owner@example.com", "--json", env=env)
    assert created.returncode == 0, created.stderr
    api_key = json.loads(created.stdout)["api_key"]
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()

    with serve(tmp_path, env=env, extra=("--workers", "2")) as server:
        # While the server runs, the CLI attaches to the same database.
        credited = run_cli("payments", "credit", "owner@example.com", "42.5", env=env)
        assert credited.returncode == 0, credited.stderr
        for _ in range(4):  # whichever worker answers sees the same data
            response = httpx.post(f"{server.base_url}/api?key={api_key}", json={"action": "balance"}, timeout=10)
            assert response.content == b'{"balance": 42.50}'
        order = httpx.post(
            f"{server.base_url}/api",
            json={"action": "order", "email": "to@example.com", "quantity": 2500, "key": api_key},
            timeout=10,
        )
        assert order.json()["order"]

    # Data survives a restart of everything.
    verify = run_cli("ledger", "verify", env=env)
    assert verify.returncode == 0, verify.stderr
    again = run_cli("payments", "credit", "owner@example.com", "0.001", env=env)
    assert "balance 40.001 USD" in again.stdout
