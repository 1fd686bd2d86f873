"""The service's secret key: where it comes from, the keys derived from it for each purpose, and
rotation.

The secret is `ORDERSVC_SECRET_KEY` when set (required in production). Otherwise the first process
to start generates one and keeps it in `$ORDERSVC_DATA_DIR/secret_key` (mode 0600); later
processes, and every other process sharing that directory, read the same file. There is no
built-in default: a secret written in the source is known to everyone who can read it.

Rotation: the new secret becomes `ORDERSVC_SECRET_KEY` and the old one moves to
`ORDERSVC_SECRET_KEY_FALLBACKS`. Everything new is signed or encrypted with the current secret;
verification and decryption accept every configured one, and what was encrypted under a fallback is
encrypted again under the current secret (at start-up, and on use).

Each use gets a key of its own, derived from the secret by HMAC-SHA256 with the purpose's name
(a PRF keyed by a high-entropy secret, as HKDF-Expand does), so a value made for one purpose (a
consent link's signature) never passes for another (a CSRF token)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from ordersvc.config import Settings

SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32
# Secrets that were ever published (SHA-256, so that none is written here): the development default
# this service shipped with up to 10edb0a. Refused wherever they are configured.
_PUBLIC_SECRET_DIGESTS = frozenset({"55ad5b14aa13141c19e6e07e71140099e3b81be3ea30390682ed6d31690ca609"})
_SEALED_VERSION = "v1"
_NONCE_BYTES = 12


class Purpose(StrEnum):
    CONSENT_LINK = "consent-link"
    CSRF = "csrf"
    TOTP_SECRET = "totp-secret"  # noqa: S105 - a purpose, not a secret
    WEBHOOK_SECRET = "webhook-secret"  # noqa: S105 - a purpose, not a secret
    REPLAY = "replay"  # an idempotent request's stored answer that holds a secret (a new API key)


# Consent links and CSRF tokens were signed with the secret itself before keys were derived per
# purpose (up to 10edb0a): those signatures are still accepted, for verification only, while the
# secret that made them is configured, so links already sent (opt-out links in deliveries live
# 400 days) and signed-in browsers keep working across the upgrade. Their messages never collide:
# a consent payload is URL-safe base64, a CSRF message starts with "csrf:".
_UNDERIVED_SIGNATURES_ACCEPTED = frozenset({Purpose.CONSENT_LINK, Purpose.CSRF})


class SecretKeyError(RuntimeError):
    """The secret key cannot be used: the message says why and what to do (and never holds it)."""


class _EmptySecretFile(SecretKeyError):
    pass


class UnsealError(Exception):
    """A sealed value that no configured secret opens (or that is not a sealed value)."""


def strength_problem(value: str) -> str | None:
    """Why a configured secret must not be used, or None."""
    if len(value) < MIN_SECRET_LENGTH:
        return f"must be at least {MIN_SECRET_LENGTH} random characters"
    if hashlib.sha256(value.encode()).hexdigest() in _PUBLIC_SECRET_DIGESTS:
        return "is a published value (the old development default): generate a random one"
    return None


def _derive(secret: bytes, purpose: Purpose) -> bytes:
    return hmac.new(secret, b"ordersvc key: " + purpose.value.encode(), hashlib.sha256).digest()


def _key_id(secret: bytes) -> str:
    """Names the secret in a sealed value, so that decryption picks the right one. Not secret."""
    digest = hmac.new(secret, b"ordersvc key id", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode()


@dataclass(frozen=True, slots=True)
class Unsealed:
    plaintext: bytes
    current: bool  # sealed under the current secret (else: seal it again)


@dataclass(frozen=True)
class Keyring:
    """The current secret and the fallbacks still accepted, with their derived keys."""

    secrets: tuple[bytes, ...]  # the current one first
    # Those that may have signed before keys were derived (None: all). Not a secret this service
    # generated itself: it never signed that way, so nothing it made needs the older scheme.
    underived: tuple[bytes, ...] | None = None
    _derived: dict[Purpose, tuple[bytes, ...]] = field(init=False, repr=False, compare=False)
    _ids: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("a keyring needs a secret")
        derived = {p: tuple(_derive(s, p) for s in self.secrets) for p in Purpose}
        object.__setattr__(self, "_derived", derived)
        object.__setattr__(self, "_ids", tuple(_key_id(s) for s in self.secrets))

    def __repr__(self) -> str:
        return f"Keyring(<{len(self.secrets)} secrets>)"

    def sign(self, purpose: Purpose, message: bytes) -> bytes:
        """HMAC-SHA256 of `message` under the current secret's key for `purpose`."""
        return hmac.new(self._derived[purpose][0], message, hashlib.sha256).digest()

    def verify(self, purpose: Purpose, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is `message`'s, under any configured secret (constant time each)."""
        keys = list(self._derived[purpose])
        if purpose in _UNDERIVED_SIGNATURES_ACCEPTED:
            keys.extend(self.secrets if self.underived is None else self.underived)
        found = False
        for key in keys:  # no early exit: the time does not tell which secret matched
            found |= hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), signature)
        return found

    def seal(self, purpose: Purpose, plaintext: bytes, *, context: bytes) -> str:
        """AES-256-GCM under the current secret's key for `purpose`; `context` (e.g. the row's
        id) is authenticated too, so a sealed value copied elsewhere does not open."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._derived[purpose][0]).encrypt(nonce, plaintext, context)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_SEALED_VERSION}.{self._ids[0]}.{body}"

    def unseal(self, purpose: Purpose, value: str, *, context: bytes) -> Unsealed:
        version, _, rest = value.partition(".")
        key_id, _, body = rest.partition(".")
        if version != _SEALED_VERSION or key_id not in self._ids:
            raise UnsealError("not sealed, or sealed under a secret that is not configured")
        index = self._ids.index(key_id)
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plaintext = AESGCM(self._derived[purpose][index]).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], context)
        except (InvalidTag, ValueError, binascii.Error):
            raise UnsealError("the sealed value does not open") from None
        return Unsealed(plaintext, current=index == 0)

    @property
    def current_seal_prefix(self) -> str:
        """How every value sealed under the current secret starts (it names no secret)."""
        return f"{_SEALED_VERSION}.{self._ids[0]}."


def is_sealed(value: str) -> bool:
    return value.startswith(f"{_SEALED_VERSION}.")


def keyring(settings: Settings) -> Keyring:
    """The keyring of these settings (the secret file is read, or made, once per process)."""
    current = settings.secret_key.get_secret_value() if settings.secret_key is not None else None
    fallbacks = tuple(f.get_secret_value() for f in settings.secret_key_fallbacks)
    return _keyring(current, fallbacks, None if current is not None else settings.data_dir)


@lru_cache(maxsize=8)
def _keyring(current: str | None, fallbacks: tuple[str, ...], data_dir: Path | None) -> Keyring:
    generated = current is None
    if current is None:
        assert data_dir is not None
        current = load_or_create_secret(data_dir)
    ordered = tuple(dict.fromkeys(s.encode() for s in (current, *fallbacks)))  # a fallback equal to the current: once
    return Keyring(ordered, underived=ordered[1:] if generated else None)


# The generated secret ----------------------------------------------------------------------------


def load_or_create_secret(data_dir: Path) -> str:
    """The secret in `data_dir/secret_key`, generated first if there is none. Safe when several
    processes start at once: each writes a complete file under a temporary name and hard-links it
    to the real name, which only one link can take; everyone then reads the winner."""
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        _create(data_dir, path)
    for _ in range(50):
        try:
            return _read(path)
        except _EmptySecretFile:
            time.sleep(0.02)  # another process is writing it (only without hard links, see _create)
    return _read(path)


def _create(data_dir: Path, path: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")  # mode 0600
    except OSError as exc:
        raise SecretKeyError(
            f"cannot create the secret key file in {data_dir} ({exc.strerror}): make the directory writable,"
            " or set ORDERSVC_SECRET_KEY"
        ) from None
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: its secret is the one
        except OSError:
            # No hard links here (some network and FUSE file systems): exclusive create instead.
            # A reader may then meet the file before it is written: it waits for the content.
            _create_exclusive(path, Path(temporary).read_text())
    finally:
        Path(temporary).unlink(missing_ok=True)


def _create_exclusive(path: Path, text: str) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _read(path: Path) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path} ({exc.strerror})") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretKeyError(f"{path} is not a regular file")
        if os.name == "posix" and info.st_mode & 0o077:
            raise SecretKeyError(
                f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}): anyone who can read it"
                " can sign as this service. Run `chmod 600` on it (or replace the secret if it may have been read)"
            )
        if os.name == "posix" and info.st_uid != os.geteuid():
            # Someone else's file, however private, is a secret they know (root would read a
            # key another user planted in a data directory it can write).
            raise SecretKeyError(
                f"{path} belongs to another user (uid {info.st_uid}): a secret key must be this service's own."
                " Remove it to have a new one generated, or give it to this user"
            )
        text = file.read(4096).decode("ascii", "replace").strip()  # generated secrets are ASCII
    if not text:
        raise _EmptySecretFile(f"{path} is empty: remove it to have a new secret key generated")
    if any(c.isspace() or not c.isprintable() or c == "\ufffd" for c in text) or strength_problem(text):
        raise SecretKeyError(
            f"{path} does not hold a secret key ({MIN_SECRET_LENGTH}+ printable characters on one line):"
            " remove it to have a new one generated (links signed with the old one stop working)"
        )
    return text
