"""The service's secret key: generated per installation when none is configured (a file of mode
0600 in the data directory, made once however many processes start together), required and strong
in production, never a value published anywhere."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordersvc.config import Settings
from ordersvc.keyring import SecretKeyError, keyring, load_or_create_secret
from tests.secrets_support import OLD_DEFAULT_SECRET, new_secret

PUBLIC_URL = "https://orders.example.com"


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a fresh installation: no secret in the environment (the suite sets one for the rest)."""
    monkeypatch.delenv("ORDERSVC_SECRET_KEY", raising=False)
    monkeypatch.delenv("ORDERSVC_SECRET_KEY_FALLBACKS", raising=False)
    monkeypatch.delenv("ORDERSVC_ENVIRONMENT", raising=False)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("unconfigured")
class TestGeneratedSecret:
    def test_first_start_generates_a_private_file_and_later_starts_reuse_it(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "not yet there"
        first = Settings(data_dir=data_dir)
        assert first.secret_key is None  # nothing in the source stands in for it
        keys = keyring(first)
        path = data_dir / "secret_key"
        assert mode_of(path) == 0o600
        secret = path.read_text().strip()
        assert len(secret) >= 48
        assert secret != OLD_DEFAULT_SECRET
        assert keys.secrets == (secret.encode(),)
        # A later start (a new process: no cache) reads the same secret.
        assert load_or_create_secret(data_dir) == secret
        assert sorted(p.name for p in data_dir.iterdir()) == ["secret_key"]  # no temporary left

    def test_installations_get_secrets_of_their_own(self, tmp_path: Path) -> None:
        assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")

    def test_processes_starting_together_agree_on_one_secret(self, tmp_path: Path) -> None:
        with multiprocessing.get_context("spawn").Pool(6) as pool:
            secrets_seen = pool.map(load_or_create_secret, [tmp_path] * 24)
        assert len(set(secrets_seen)) == 1
        assert secrets_seen[0] == (tmp_path / "secret_key").read_text().strip()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]

    def test_a_file_others_can_read_is_refused(self, tmp_path: Path) -> None:
        load_or_create_secret(tmp_path)
        (tmp_path / "secret_key").chmod(0o640)
        with pytest.raises(SecretKeyError, match="readable by other users") as refused:
            load_or_create_secret(tmp_path)
        assert (tmp_path / "secret_key").read_text().strip() not in str(refused.value)

    @pytest.mark.parametrize("content", ["", "short", OLD_DEFAULT_SECRET, "two words " + "x" * 40])
    def test_a_file_that_holds_no_usable_secret_is_refused(self, tmp_path: Path, content: str) -> None:
        path = tmp_path / "secret_key"
        path.write_text(content)
        path.chmod(0o600)
        with pytest.raises(SecretKeyError):
            load_or_create_secret(tmp_path)

    def test_bytes_that_are_not_text_are_refused_not_a_traceback(self, tmp_path: Path) -> None:
        path = tmp_path / "secret_key"
        path.write_bytes(b"\xff\xfe" + b"\x80" * 60)
        path.chmod(0o600)
        with pytest.raises(SecretKeyError, match="does not hold a secret key"):
            load_or_create_secret(tmp_path)

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to make another user's file")
    def test_a_file_another_user_owns_is_refused(self, tmp_path: Path) -> None:
        """Private to its owner is not private to us: a key planted by another user is theirs."""
        path = tmp_path / "secret_key"
        path.write_text(new_secret())
        path.chmod(0o600)
        os.chown(path, 65534, 65534)  # nobody
        with pytest.raises(SecretKeyError, match="belongs to another user"):
            load_or_create_secret(tmp_path)

    def test_a_symlink_is_refused(self, tmp_path: Path) -> None:
        target = tmp_path / "elsewhere"
        target.write_text(new_secret())
        target.chmod(0o600)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "secret_key").symlink_to(target)
        with pytest.raises(SecretKeyError):
            load_or_create_secret(tmp_path / "data")


@pytest.mark.usefixtures("unconfigured")
class TestConfiguredSecret:
    def test_production_requires_a_secret_and_generates_none(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="ORDERSVC_SECRET_KEY must be set in production"):
            Settings(environment="production", public_url=PUBLIC_URL, data_dir=tmp_path)
        assert list(tmp_path.iterdir()) == []
        configured = Settings(
            environment="production", public_url=PUBLIC_URL, secret_key=new_secret(), data_dir=tmp_path
        )
        keyring(configured)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("environment", ["production", "development", "test"])
    @pytest.mark.parametrize("weak", ["x" * 31, OLD_DEFAULT_SECRET])
    def test_weak_or_published_secrets_are_refused_everywhere(self, environment: str, weak: str) -> None:
        for settings in ({"secret_key": weak}, {"secret_key": new_secret(), "secret_key_fallbacks": [weak]}):
            with pytest.raises(ValidationError, match="ORDERSVC_SECRET_KEY") as refused:
                Settings(environment=environment, public_url=PUBLIC_URL, **settings)  # type: ignore[arg-type]
            assert weak not in str(refused.value)  # the error never repeats a secret

    def test_fallbacks_are_read_like_the_other_lists(self, monkeypatch: pytest.MonkeyPatch) -> None:
        current, old, older = new_secret(), new_secret(), new_secret()
        monkeypatch.setenv("ORDERSVC_SECRET_KEY", current)
        monkeypatch.setenv("ORDERSVC_SECRET_KEY_FALLBACKS", f"{old}, {older}")
        assert keyring(Settings()).secrets == (current.encode(), old.encode(), older.encode())
        monkeypatch.setenv("ORDERSVC_SECRET_KEY_FALLBACKS", f'["{old}"]')
        assert keyring(Settings()).secrets == (current.encode(), old.encode())
        assert old not in repr(Settings())
        assert old not in repr(keyring(Settings()))

    def test_an_empty_variable_is_no_secret(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("ORDERSVC_SECRET_KEY", "")
        assert Settings(data_dir=tmp_path).secret_key is None
        with pytest.raises(ValidationError, match="ORDERSVC_SECRET_KEY must be set"):
            Settings(environment="production", public_url=PUBLIC_URL)
