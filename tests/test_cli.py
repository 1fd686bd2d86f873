"""The operator's CLI, run as a real command against the test database."""

from __future__ import annotations

import json
import os
import re
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import run_cli, unique_email


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def account(database_url: str) -> dict[str, str]:
    result = run_cli("accounts", "create", unique_email("cli"), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    created: dict[str, str] = json.loads(lines[0])
    return created


class TestAccountsAndKeys:
    def test_accounts_create_json_is_one_line_with_the_key(self, account: dict[str, str]) -> None:
        assert set(account) == {"id", "email", "api_key"}
        assert isinstance(account["id"], int)
        assert re.fullmatch(r"osk_[A-Za-z0-9_-]{43}", account["api_key"])

    def test_accounts_create_plain_shows_the_key_once(self, database_url: str) -> None:
        email = unique_email("plain")
        result = run_cli("accounts", "create", email)
        assert result.returncode == 0
        assert email in result.stdout
        assert re.search(r"osk_[A-Za-z0-9_-]{43}", result.stdout)

    def test_duplicate_account_is_a_one_line_error(self, account: dict[str, str]) -> None:
        assert "already exists" in one_line_error(run_cli("accounts", "create", account["email"]))

    def test_bad_email_is_a_one_line_error(self, database_url: str) -> None:
        assert "Invalid email" in one_line_error(run_cli("accounts", "create", "not-an-email"))

    def test_keys_create_and_revoke(self, account: dict[str, str]) -> None:
        result = run_cli("keys", "create", account["email"], "--json")
        assert result.returncode == 0, result.stderr
        new_key = json.loads(result.stdout)
        assert new_key["email"] == account["email"]
        assert new_key["api_key"].startswith(new_key["prefix"])
        assert new_key["api_key"] != account["api_key"]

        revoked = run_cli("keys", "revoke", account["api_key"][:12])
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked" in revoked.stdout
        assert "No active API key" in one_line_error(run_cli("keys", "revoke", account["api_key"][:12]))

    def test_keys_revoke_accepts_the_whole_key(self, account: dict[str, str]) -> None:
        assert run_cli("keys", "revoke", account["api_key"]).returncode == 0

    def test_keys_for_unknown_email(self, database_url: str) -> None:
        assert "No account" in one_line_error(run_cli("keys", "create", unique_email("ghost")))


class TestPaymentsCredit:
    def test_credit_prints_the_new_balance(self, account: dict[str, str]) -> None:
        result = run_cli("payments", "credit", account["email"], "12.345", "--description", "wire 42")
        assert result.returncode == 0, result.stderr
        assert "balance 12.345 USD" in result.stdout
        result = run_cli("payments", "credit", account["email"], "0.655")
        assert "balance 13.00 USD" in result.stdout

    @pytest.mark.parametrize("amount", ["-5", "0", "abc", "1.2345", "1e3", "NaN"])
    def test_bad_amount_changes_nothing(self, account: dict[str, str], amount: str) -> None:
        assert "Invalid amount" in one_line_error(run_cli("payments", "credit", account["email"], amount))

    def test_unknown_email(self, database_url: str) -> None:
        assert "No account" in one_line_error(run_cli("payments", "credit", unique_email("ghost"), "5"))


class TestLedgerVerify:
    async def test_drifted_counters_are_reported_then_recounted(
        self, account: dict[str, str], sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE accounts SET payments_count = payments_count + 3 WHERE id = :id"), {"id": account["id"]}
            )
        verify = run_cli("ledger", "verify")
        recount = run_cli("ledger", "recount")
        assert verify.returncode == 1
        assert f"account {account['id']} {account['email']}: payments counter" in verify.stderr
        assert "ledger recount" in verify.stderr
        assert recount.returncode == 0, recount.stderr
        assert re.fullmatch(r"recounted: [1-9][0-9]* account\(s\) repaired\n", recount.stdout)  # this one at least
        assert run_cli("ledger", "verify").returncode == 0

    def test_verify_passes(self, database_url: str) -> None:
        result = run_cli("ledger", "verify")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok")

    async def test_verify_fails_with_the_difference(
        self, account: dict[str, str], sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        tamper = "UPDATE accounts SET balance_mills = balance_mills + :d WHERE id = :id"
        async with sessionmaker.begin() as session:
            await session.execute(sa.text(tamper), {"d": 1500, "id": account["id"]})
        try:
            result = run_cli("ledger", "verify")
        finally:
            async with sessionmaker.begin() as session:
                await session.execute(sa.text(tamper), {"d": -1500, "id": account["id"]})
        assert result.returncode == 1
        assert f"account {account['id']} {account['email']}: balance 1.50 != payments 0.00" in result.stderr


def test_migrate_is_idempotent(database_url: str) -> None:
    for _ in range(2):
        result = run_cli("migrate")
        assert result.returncode == 0, result.stderr


def test_cli_credit_is_visible_to_the_api(account: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support import serve

    assert run_cli("payments", "credit", account["email"], "7.5").returncode == 0
    with serve(tmp_path, env=dict(os.environ)) as server:
        response = httpx.post(f"{server.base_url}/api?key={account['api_key']}", json={"action": "balance"})
    assert response.content == b'{"balance": 7.50}'


class TestMoneyInCommands:
    def test_bonus_set_list_remove(self, database_url: str) -> None:
        try:
            assert run_cli("bonus", "set", "250", "2.5%").returncode == 0
            assert run_cli("bonus", "set", "250", "3").stdout.strip() == "bonus tier: 250.00 USD -> 3%"
            assert "250.00 USD\t3%" in run_cli("bonus", "list").stdout
            assert "at most 100" in one_line_error(run_cli("bonus", "set", "250", "101%"))
            assert "Invalid" in one_line_error(run_cli("bonus", "set", "-5", "5%"))
        finally:
            removed = run_cli("bonus", "remove", "250")
        assert removed.returncode == 0
        assert "No bonus tier" in one_line_error(run_cli("bonus", "remove", "250"))

    def test_coupons_create_list_disable(self, database_url: str) -> None:
        code = f"Cli-{unique_email()[:8]}"
        created = run_cli("coupons", "create", code, "7.5", "--max-redemptions", "3", "--expires", "2099-01-01")
        assert created.returncode == 0, created.stderr
        assert f"{code.lower()}\t7.50 USD\t0/3\texpires 2099-01-01 23:59" in run_cli("coupons", "list").stdout
        assert "already exists" in one_line_error(run_cli("coupons", "create", code.upper(), "1"))
        assert "invalid --expires" in one_line_error(run_cli("coupons", "create", code + "x", "1", "--expires", "soon"))
        too_many = run_cli("coupons", "create", code + "y", "1", "--max-redemptions", "3000000000")
        assert "--max-redemptions must be between" in one_line_error(too_many)
        assert run_cli("coupons", "disable", code).returncode == 0
        assert f"{code.lower()}\t7.50 USD\t0/3\tdisabled" in run_cli("coupons", "list").stdout

    def test_deposits_import_unmatched_assign(self, account: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
        addresses = tmp_path / "btc.txt"
        tag = unique_email()[:12].replace("-", "")
        addresses.write_text(f"bc1q{tag}aaaa\nbc1q{tag}bbbb\n\nbc1q{tag}aaaa\n")
        assert run_cli("deposits", "import-addresses", "btc", str(addresses)).stdout.strip() == (
            "2 addresses added to the BTC pool"
        )
        assert "0 addresses" in run_cli("deposits", "import-addresses", "BTC", str(addresses)).stdout
        assert "Unknown network" in one_line_error(run_cli("deposits", "import-addresses", "DOGE", str(addresses)))
        assert "cannot read" in one_line_error(run_cli("deposits", "import-addresses", "BTC", str(tmp_path / "no")))
        assert "No such deposit" in one_line_error(run_cli("deposits", "assign", "999999999", account["email"]))
        assert "No such deposit" in one_line_error(run_cli("deposits", "assign", "9" * 20, account["email"]))

    async def test_deposits_unmatched_and_assign(self, account: dict[str, str], sessionmaker) -> None:  # type: ignore[no-untyped-def]
        from ordersvc.deposits import service as deposits

        tx = uuid.uuid4().hex * 2  # 64 hex digits, as a BTC txid
        async with sessionmaker.begin() as session:
            outcome = await deposits.record_deposit(
                session,
                deposits.DepositEvent(processor="chain", external_id=f"cli-{tx}", amount_mills=12_345, payload={},
                                      network="BTC", address=f"bc1qnobody{tx}", tx_hash=tx),
            )  # fmt: skip
        assert outcome.status == "unmatched"
        listed = run_cli("deposits", "unmatched")
        assert f"{outcome.deposit_id}\tchain\t12.345 USD\tBTC\tbc1qnobody{tx}\t{tx}" in listed.stdout
        assigned = run_cli("deposits", "assign", str(outcome.deposit_id), account["email"])
        assert assigned.returncode == 0, assigned.stderr
        assert f"credited to {account['email']}: 12.345 USD" in assigned.stdout
        assert "already credited" in one_line_error(
            run_cli("deposits", "assign", str(outcome.deposit_id), account["email"])
        )


class TestScripting:
    """What scripts rely on: a fast `--help` and `--version`, JSON for every list and creation
    (errors too), and exit codes by kind of outcome."""

    def test_help_and_version_load_no_database_driver_orm_or_web_framework(self) -> None:
        import subprocess
        import sys

        probe = (
            "import sys; import ordersvc.cli;"
            " print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel', 'fastapi',"
            " 'starlette', 'pydantic', 'asyncpg', 'alembic', 'httpx', 'uvicorn'}))"
        )
        loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert loaded.stdout.strip() == "[]"
        version = run_cli("--version")
        assert version.returncode == 0
        assert re.fullmatch(r"ordersvc \d+\.\d+\.\d+\S*\n", version.stdout)
        helped = run_cli("--help")
        assert helped.returncode == 0
        assert "Exit codes: 0 done; 1 refused" in " ".join(helped.stdout.split())

    def test_exit_codes_by_kind_and_errors_as_json(self, account: dict[str, str]) -> None:
        missing = run_cli("keys", "create", unique_email("nobody"), "--json")
        assert missing.returncode == 3
        assert missing.stdout == ""
        assert json.loads(missing.stderr)["error"] == {"code": "not_found", "message": "No account with that email."}
        duplicate = run_cli("accounts", "create", account["email"], "--json")
        assert duplicate.returncode == 4
        assert json.loads(duplicate.stderr)["error"]["code"] == "account_exists"
        assert run_cli("payments", "credit", account["email"], "1.0001").returncode == 1  # refused: bad amount
        assert run_cli("payments", "credit", account["email"]).returncode == 2  # usage: no AMOUNT
        plain = run_cli("accounts", "create", account["email"])
        assert (plain.returncode, plain.stderr.startswith("error: ")) == (4, True)
        # A usage error is JSON too with --json (and click's own text without).
        usage = run_cli("payments", "credit", account["email"], "--json")
        assert usage.returncode == 2
        assert json.loads(usage.stderr) == {"error": {"code": "usage", "message": "Missing argument 'amount'."}}
        unknown = run_cli("accounts", "list", "--nope", "--json")
        assert (unknown.returncode, json.loads(unknown.stderr)["error"]["code"]) == (2, "usage")
        assert "Usage:" in run_cli("accounts", "list", "--nope").stderr

    def test_credit_with_json_answers_one_object(self, account: dict[str, str]) -> None:
        result = run_cli("payments", "credit", account["email"], "5", "--json")
        assert result.returncode == 0, result.stderr
        credited = json.loads(result.stdout)
        assert credited == {
            "payment_id": credited["payment_id"],
            "email": account["email"],
            "amount": "5.00",
            "balance": "5.00",
        }

    def test_every_list_with_json_is_one_array(self, account: dict[str, str]) -> None:
        lists = [
            ("accounts", "list"),
            ("workers", "list"),
            ("coupons", "list"),
            ("bonus", "list"),
            ("suppression", "list"),
            ("outbox", "list", "--limit", "2"),
            ("deposits", "pool"),
            ("deposits", "unmatched"),
            ("deposits", "collisions"),
        ]
        for command in lists:
            result = run_cli(*command, "--json")
            assert result.returncode == 0, (command, result.stderr)
            assert isinstance(json.loads(result.stdout), list), command
        accounts = json.loads(run_cli("accounts", "list", "--json").stdout)
        assert {"id": account["id"], "email": account["email"], "balance": "0.00"}.items() <= next(
            a for a in accounts if a["id"] == account["id"]
        ).items()

    def test_creations_with_json_answer_one_object(self, database_url: str) -> None:
        code = f"cli{uuid.uuid4().hex[:8]}"  # codes are kept as lowercase
        coupon = json.loads(run_cli("coupons", "create", code, "2.5", "--max-redemptions", "3", "--json").stdout)
        assert coupon == {"code": code, "amount": "2.50", "max_redemptions": 3, "expires_at": None, "disabled": False}
        listed = json.loads(run_cli("coupons", "list", "--json").stdout)
        assert {**coupon, "redemptions": 0} in listed
        worker = json.loads(run_cli("workers", "create", f"cli-{uuid.uuid4().hex[:8]}", "--json").stdout)
        assert set(worker) == {"name", "token"}


def test_the_cli_reads_the_schema_head_as_alembic_does() -> None:
    from ordersvc import db

    assert db.code_head() == db.migration_head()
