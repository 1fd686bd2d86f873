"""The README's first command on a machine with no database: `ordersvc serve` starts an
embedded PostgreSQL in ORDERSVC_DATA_DIR, and the CLI with the same directory shares it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ORDERSVC, run_cli, serve


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


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited postmaster may wait for a parent that never reaps)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _holders(data_dir: Path) -> list[int]:
    path = data_dir / "pg" / ".handle_pids.json"
    return list(json.loads(path.read_text())) if path.exists() else []


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _ends_within(pid: int, seconds: float) -> bool:
    return _wait_until(lambda: not _running(pid), seconds)


def _start_mailer(env: dict[str, str], data_dir: Path) -> subprocess.Popen[str]:
    """`ordersvc mailer`, a long-running CLI command, attached to the embedded server."""
    mailer = subprocess.Popen(
        [ORDERSVC, "mailer"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert _wait_until(lambda: mailer.pid in _holders(data_dir) or mailer.poll() is not None, 60)
    assert mailer.poll() is None, mailer.stderr.read() if mailer.stderr else ""
    return mailer


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory outside pytest's own temporary tree: a pytest run starting meanwhile
    resets that tree's mode to 0700, which locks the embedded server's system user (when the
    tests run as root) out of a data directory created in it."""
    path = Path(tempfile.mkdtemp(prefix="ordersvc-embedded-"))
    try:
        yield path / "data"
    finally:
        shutil.rmtree(path, ignore_errors=True)


class TestTheEmbeddedServerStops:
    """The embedded PostgreSQL stops when the last process holding it ends, however it ends:
    SIGTERM (systemd, Docker), SIGINT (Ctrl+C), or a holder killed outright before it."""

    def test_serve_stops_it_on_sigterm_and_on_sigint(self, data_dir: Path, tmp_path: Path) -> None:
        env = embedded_env(data_dir)
        for sig, extra in (
            (signal.SIGTERM, ()),
            (signal.SIGINT, ()),
            (signal.SIGTERM, ("--workers", "2")),
            (signal.SIGINT, ("--workers", "2")),
        ):
            with serve(tmp_path, env=env, extra=extra) as server:
                postmaster = _postmaster_pid(data_dir)
                assert _running(postmaster)
                server.process.send_signal(sig)
                server.process.wait(timeout=30)
                assert _ends_within(postmaster, 15), (sig, extra, server.log())
            assert _holders(data_dir) == [], (sig, extra)
            assert "Traceback" not in server.log()

    def test_whichever_holder_ends_last_stops_it(self, data_dir: Path, tmp_path: Path) -> None:
        env = {**embedded_env(data_dir), "ORDERSVC_MAILER_IN_SERVE": "false"}
        for serve_ends_first in (True, False):
            with serve(tmp_path, env=env) as server:
                postmaster = _postmaster_pid(data_dir)
                mailer = _start_mailer(env, data_dir)
                first, last = (server.process, mailer) if serve_ends_first else (mailer, server.process)
                first.send_signal(signal.SIGTERM)
                first.wait(timeout=30)
                time.sleep(1)
                assert _running(postmaster)  # the other holder still uses it
                if not serve_ends_first:  # the server left alone still reaches its database
                    assert httpx.get(f"{server.base_url}/readyz", timeout=5).status_code == 200
                last.send_signal(signal.SIGTERM)
                last.wait(timeout=30)
                assert _ends_within(postmaster, 15), serve_ends_first
            assert _holders(data_dir) == []

    def test_a_holder_killed_outright_does_not_keep_it_running(self, data_dir: Path, tmp_path: Path) -> None:
        env = embedded_env(data_dir)
        with serve(tmp_path, env=env) as server:
            postmaster = _postmaster_pid(data_dir)
            server.process.kill()  # no exit hook runs: its pid stays in the list of holders
            server.process.wait(timeout=10)
        assert server.process.pid in _holders(data_dir)
        assert _running(postmaster)
        # The next holder to end is the last live one: it stops the server.
        migrated = run_cli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert _ends_within(postmaster, 15)
        assert _holders(data_dir) == []
