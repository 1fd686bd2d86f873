"""`ordersvc serve` with no secret configured: the first start generates the installation's own
secret (mode 0600) in its data directory and signs with it; a file others can read stops it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.secrets_support import OLD_DEFAULT_SECRET, account_that_signs_in, new_secret, sign_in
from tests.support import serve


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestServe:
    async def test_serve_in_an_empty_data_dir_signs_with_a_secret_of_its_own(
        self, database_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
    ) -> None:
        data_dir = tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSVC_SECRET_KEY")}
        env |= {"ORDERSVC_DATA_DIR": str(data_dir), "ORDERSVC_MAILER_IN_SERVE": "false"}
        email = await account_that_signs_in(sessionmaker)
        with serve(tmp_path, env=env) as server:
            path = data_dir / "secret_key"
            assert mode_of(path) == 0o600
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                signed_in = await sign_in(client, email)
                assert signed_in.status_code == 200, signed_in.text
                session_token = signed_in.cookies["ordersvc_session"]
        from ordersvc.accounts import sessions
        from ordersvc.keyring import Keyring

        generated = Keyring((path.read_text().strip().encode(),))
        assert signed_in.json()["csrf_token"] == sessions.csrf_token(generated, session_token)
        assert OLD_DEFAULT_SECRET not in server.log()

    def test_serve_refuses_a_secret_file_others_can_read(self, database_url: str, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        (data_dir / "secret_key").write_text(new_secret())
        (data_dir / "secret_key").chmod(0o644)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSVC_SECRET_KEY")}
        env |= {"ORDERSVC_DATA_DIR": str(data_dir), "ORDERSVC_MAILER_IN_SERVE": "false"}
        with pytest.raises(RuntimeError, match="readable by other users") as refused, serve(tmp_path, env=env):
            pass
        assert "Traceback" not in str(refused.value)  # one line that says what to do
