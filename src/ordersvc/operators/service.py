"""Operators: creating them (with a one-time link to choose a password), their roles, sign-in
with a password and a TOTP code (mandatory: enrolled at the first sign-in), their sessions, and
what each role may do.

Sign-in, step by step: the one-time link sets the password (`set_password`). `login` checks the
password and, for an operator enrolled, the TOTP code in the same request, and opens a session;
an operator not enrolled yet gets a session that reaches only enrolment (`start_totp`,
`confirm_totp`), which then becomes a full one. An operator who lost the authenticator gets a new
link from the CLI (`operators reset`): it clears the second factor and ends their sessions.

Every sign-in, failed or not, and every change to an operator is in the audit log. Failed
sign-ins are throttled per operator and per client address, as customers' are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts import passwords, throttle, totp
from ordersvc.accounts.sessions import InvalidTotpCode, csrf_token
from ordersvc.accounts.tokens import hash_secret, new_secret
from ordersvc.audit import service as audit
from ordersvc.audit.service import Actor
from ordersvc.config import Settings
from ordersvc.emails import InvalidEmail, normalize_email
from ordersvc.errors import Conflict, InvalidApiKey, NotFound, ServiceError
from ordersvc.keyring import Keyring, Purpose, UnsealError
from ordersvc.operators.models import Operator, OperatorRole, OperatorSession, OperatorToken
from ordersvc.timestamps import utc_now

# A session records when it was last used at most this often: the idle timeout is exact to it.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class OperatorSignInFailed(ServiceError):
    status = 401
    code = "operator_sign_in_failed"
    message = "Invalid email, password or code."


class OperatorSessionEnded(InvalidApiKey):
    code = "operator_session_required"
    message = "Sign in to the console (your session has ended or was never opened)."


class EnrolmentRequired(ServiceError):
    status = 403
    code = "totp_enrolment_required"
    message = "Set up your authenticator app first: operators must sign in with a TOTP code."


class AlreadyEnrolled(Conflict):
    code = "totp_already_enrolled"
    message = "This operator's second factor is set up already."


class RoleForbidden(ServiceError):
    status = 403
    code = "operator_role_forbidden"
    message = "Your role does not allow this (it needs an admin)."


class InvalidOperatorLink(ServiceError):
    status = 400
    code = "invalid_operator_link"
    message = "This link is not valid, was used already or has expired: ask an admin for a new one."


class OperatorExists(Conflict):
    code = "operator_exists"
    message = "An operator with this email exists already."


class OperatorNotFound(NotFound):
    code = "operator_not_found"
    message = "No such operator."


class LastAdmin(Conflict):
    code = "last_admin"
    message = "The last active admin cannot be disabled or made support: make another admin first."


class InvalidRole(ServiceError):
    status = 422
    code = "invalid_role"
    message = "A role is `admin` or `support`."
    field = "role"


def parse_role(text: str) -> OperatorRole:
    try:
        return OperatorRole(text.strip().lower())
    except ValueError:
        raise InvalidRole() from None


def normalize_operator_email(raw: str) -> str:
    return normalize_email(raw).lower()


def may(operator: Operator, needed: OperatorRole) -> bool:
    """Whether the operator's role allows what needs `needed` (admin allows everything)."""
    return operator.role == OperatorRole.ADMIN or needed == OperatorRole.SUPPORT


def require(operator: Operator, needed: OperatorRole) -> None:
    if not may(operator, needed):
        raise RoleForbidden()


def actor_of(operator: Operator, ip: str | None = None) -> Actor:
    assert operator.id is not None
    return Actor(operator.id, operator.email, ip)


def _describe(operator: Operator) -> dict[str, object]:
    return {
        "email": operator.email,
        "role": operator.role,
        "disabled": operator.disabled_at is not None,
        "totp": operator.totp_enabled_at is not None,
    }


# Operators (the CLI, and admins in the console) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorLink:
    operator: Operator
    url: str  # the one-time link: its token is in the fragment, which no server or proxy sees
    expires_at: datetime


async def _issue_link(session: AsyncSession, operator: Operator, settings: Settings) -> OperatorLink:
    assert operator.id is not None
    await session.execute(
        sa.update(OperatorToken)
        .where(col(OperatorToken.operator_id) == operator.id, col(OperatorToken.used_at).is_(None))
        .values(used_at=utc_now())
    )
    token = new_secret()
    expires = utc_now() + timedelta(hours=settings.operator_link_hours)
    session.add(OperatorToken(operator_id=operator.id, token_hash=hash_secret(token), expires_at=expires))
    await session.flush()
    url = f"{settings.public_url.rstrip('/')}/admin/#/set-password/{token}"
    return OperatorLink(operator, url, expires)


async def create_operator(
    session: AsyncSession, actor: Actor, *, email: str, role: OperatorRole, settings: Settings
) -> OperatorLink:
    """A new operator and the one-time link where they choose a password."""
    address = normalize_operator_email(email)
    existing = await session.execute(sa.select(col(Operator.id)).where(col(Operator.email) == address))
    if existing.first() is not None:
        raise OperatorExists()
    operator = Operator(email=address, role=role.value)
    session.add(operator)
    try:
        await session.flush()
    except sa.exc.IntegrityError:
        raise OperatorExists() from None
    await audit.record(
        session, actor, "operator.create", object_type="operator", object_id=operator.id, after=_describe(operator)
    )
    return await _issue_link(session, operator, settings)


async def list_operators(session: AsyncSession) -> list[Operator]:
    return list((await session.execute(sa.select(Operator).order_by(col(Operator.id)))).scalars().all())


async def get_operator(session: AsyncSession, *, email: str | None = None, operator_id: int | None = None) -> Operator:
    """The operator by email or id, locked for the rest of the transaction."""
    stmt = sa.select(Operator).with_for_update()
    if operator_id is not None:
        stmt = stmt.where(col(Operator.id) == operator_id)
    else:
        try:
            stmt = stmt.where(col(Operator.email) == normalize_operator_email(email or ""))
        except InvalidEmail:
            raise OperatorNotFound() from None
    operator = (await session.execute(stmt)).scalar_one_or_none()
    if operator is None:
        raise OperatorNotFound()
    return operator


async def _check_not_last_admin(session: AsyncSession, operator: Operator) -> None:
    if operator.role != OperatorRole.ADMIN or operator.disabled_at is not None:
        return
    # The admins are locked first, so that two demotions at once cannot both pass this check.
    admins = (
        await session.execute(
            sa.select(col(Operator.id))
            .where(col(Operator.role) == OperatorRole.ADMIN.value, col(Operator.disabled_at).is_(None))
            .with_for_update()
        )
    ).all()
    if len(admins) <= 1:
        raise LastAdmin()


async def set_disabled(session: AsyncSession, actor: Actor, operator: Operator, *, disabled: bool) -> Operator:
    """Disable an operator (their sessions end at once) or enable them again."""
    before = _describe(operator)
    if disabled and operator.disabled_at is None:
        await _check_not_last_admin(session, operator)
        operator.disabled_at = utc_now()
        await end_sessions(session, operator_id=operator.id)
    elif not disabled:
        operator.disabled_at = None
    await session.flush()
    await audit.record(
        session,
        actor,
        "operator.disable" if disabled else "operator.enable",
        object_type="operator",
        object_id=operator.id,
        before=before,
        after=_describe(operator),
    )
    return operator


async def set_role(session: AsyncSession, actor: Actor, operator: Operator, *, role: OperatorRole) -> Operator:
    before = _describe(operator)
    if role != OperatorRole.ADMIN:
        await _check_not_last_admin(session, operator)
    operator.role = role.value
    await session.flush()
    await audit.record(
        session, actor, "operator.role", object_type="operator", object_id=operator.id, before=before,
        after=_describe(operator),
    )  # fmt: skip
    return operator


async def reset_operator(
    session: AsyncSession, actor: Actor, operator: Operator, *, settings: Settings
) -> OperatorLink:
    """A lost password or authenticator: a new one-time link; the password and the second factor
    are cleared and every session ends (the operator enrols again at the next sign-in)."""
    before = _describe(operator)
    operator.password_hash = None
    operator.totp_secret = None
    operator.totp_enabled_at = None
    operator.totp_last_step = None
    await session.flush()
    await end_sessions(session, operator_id=operator.id)
    await audit.record(
        session, actor, "operator.reset", object_type="operator", object_id=operator.id, before=before,
        after=_describe(operator),
    )  # fmt: skip
    return await _issue_link(session, operator, settings)


async def set_password(session: AsyncSession, *, token: str, password: str) -> Operator:
    """Use a one-time link: the operator's password is set (the link is spent)."""
    if not 20 <= len(token) <= 100:
        raise InvalidOperatorLink()
    row = (
        await session.execute(
            sa.select(OperatorToken, Operator)
            .join(Operator, col(Operator.id) == col(OperatorToken.operator_id))
            .where(
                col(OperatorToken.token_hash) == hash_secret(token),
                col(OperatorToken.used_at).is_(None),
                col(OperatorToken.expires_at) > utc_now(),
                col(Operator.disabled_at).is_(None),
            )
            .with_for_update(of=OperatorToken)
        )
    ).one_or_none()
    if row is None:
        raise InvalidOperatorLink()
    link, operator = row
    passwords.check_policy(password, email=operator.email)
    link.used_at = utc_now()
    operator.password_hash = await passwords.hash_password(password)
    await session.flush()
    await audit.record(
        session, actor_of(operator), "operator.set_password", object_type="operator", object_id=operator.id
    )
    return operator


# Sign-in and sessions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewOperatorSession:
    operator: Operator
    token: str  # the cookie's value: shown to the browser only
    csrf: str
    enrolled: bool  # False: the session reaches only the enrolment routes until confirmed


def _totp_context(operator_id: int) -> bytes:
    return f"operators.totp_secret:{operator_id}".encode()


def _open_secret(keys: Keyring, operator: Operator) -> str | None:
    assert operator.id is not None
    if operator.totp_secret is None:
        return None
    try:
        opened = keys.unseal(Purpose.TOTP_SECRET, operator.totp_secret, context=_totp_context(operator.id))
    except UnsealError:
        return None
    secret = opened.plaintext.decode()
    if not opened.current:
        operator.totp_secret = keys.seal(Purpose.TOTP_SECRET, secret.encode(), context=_totp_context(operator.id))
    return secret


async def _take_totp_step(session: AsyncSession, operator: Operator, secret: str, code: str) -> bool:
    """Whether `code` is the operator's current code, not used before (moved atomically: of two
    sign-ins with one code, one wins)."""
    step = totp.matching_step(secret, code.strip(), now=utc_now().timestamp(), after_step=operator.totp_last_step)
    if step is None:
        return False
    moved = await session.execute(
        sa.update(Operator)
        .where(
            col(Operator.id) == operator.id,
            sa.or_(col(Operator.totp_last_step).is_(None), col(Operator.totp_last_step) < step),
        )
        .values(totp_last_step=step)
        .returning(col(Operator.id))
    )
    if moved.scalar_one_or_none() is None:
        return False
    operator.totp_last_step = step
    return True


def _sign_in_keys(email: str, ip: str) -> list[tuple[str, int]]:
    return throttle.sign_in_keys(email, ip, scope="operator", normalize=normalize_operator_email)


def _enrolment_keys(operator: Operator) -> list[tuple[str, int]]:
    """Enrolment codes share the operator's sign-in count: a stolen password and an enrolment
    session give no more guesses at the code than sign-in does."""
    return throttle.account_keys(operator.email, "operator")


async def login(
    session: AsyncSession,
    *,
    attempts: throttle.Attempts,
    email: str,
    password: str,
    totp_code: str | None,
    ip: str,
    user_agent: str,
    settings: Settings,
    keys: Keyring,
) -> NewOperatorSession:
    """Check the password and, once enrolled, the TOTP code; a new session (a new random id every
    time: no fixation). A failure is audited in a transaction of its own (the caller's rolls
    back) and says only OperatorSignInFailed, whatever was wrong."""
    throttle_keys = _sign_in_keys(email, ip)
    await throttle.count_attempt(attempts, throttle_keys)
    try:
        address = normalize_operator_email(email)
    except InvalidEmail:
        address = ""
    operator = None
    if address:
        found = await session.execute(sa.select(Operator).where(col(Operator.email) == address))
        operator = found.scalar_one_or_none()
    stored = operator.password_hash if operator is not None else None
    password_ok = await passwords.verify_password(stored, password)
    if operator is None or not password_ok or operator.disabled_at is not None:
        await _audit_failure(attempts, operator, email, ip, "password")
        raise OperatorSignInFailed()
    enrolled = operator.totp_enabled_at is not None
    if enrolled:
        # A missing or wrong code gets the answer a wrong password gets: the answer never tells
        # that the password was right.
        secret = _open_secret(keys, operator)
        if not totp_code or secret is None or not await _take_totp_step(session, operator, secret, totp_code):
            await _audit_failure(attempts, operator, email, ip, "totp")
            raise OperatorSignInFailed()
    await throttle.attempt_succeeded(session, throttle_keys)
    new = await _open_session(session, operator, ip=ip, user_agent=user_agent, settings=settings, keys=keys,
                              second_factor=enrolled)  # fmt: skip
    await audit.record(
        session, actor_of(operator, ip), "operator.sign_in", object_type="operator", object_id=operator.id,
        after={"second_factor": enrolled},
    )  # fmt: skip
    return new


async def _open_session(
    session: AsyncSession,
    operator: Operator,
    *,
    ip: str,
    user_agent: str,
    settings: Settings,
    keys: Keyring,
    second_factor: bool,
) -> NewOperatorSession:
    """A new session with a new random id (no fixation)."""
    assert operator.id is not None
    token = new_secret()
    now = utc_now()
    session.add(
        OperatorSession(
            operator_id=operator.id,
            token_hash=hash_secret(token),
            user_agent=user_agent[:300],
            ip=ip[:64],
            second_factor_at=now if second_factor else None,
            expires_at=now + timedelta(hours=settings.operator_session_hours),
        )
    )
    await session.flush()
    return NewOperatorSession(operator, token, csrf_token(keys, token), second_factor)


async def _audit_failure(
    attempts: throttle.Attempts, operator: Operator | None, email: str, ip: str, step: str
) -> None:
    async with attempts.begin() as own:
        actor = actor_of(operator, ip) if operator is not None else Actor(None, email.strip()[:200], ip)
        await audit.record(
            own, actor, "operator.sign_in_failed", object_type="operator",
            object_id=operator.id if operator is not None else None, after={"step": step},
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class OperatorAuth:
    operator: Operator
    session_id: int
    enrolled: bool  # the session passed the second factor


async def authenticate_session(session: AsyncSession, *, token: str, settings: Settings) -> OperatorAuth | None:
    """The operator of a live session cookie: not ended, not idle for longer than the setting,
    not past its lifetime, of an operator not disabled."""
    if not 20 <= len(token) <= 100:
        return None
    now = utc_now()
    row = (
        await session.execute(
            sa.select(OperatorSession, Operator)
            .join(Operator, col(Operator.id) == col(OperatorSession.operator_id))
            .where(
                col(OperatorSession.token_hash) == hash_secret(token),
                col(OperatorSession.revoked_at).is_(None),
                col(OperatorSession.expires_at) > now,
                col(OperatorSession.last_seen_at) > now - timedelta(minutes=settings.operator_idle_minutes),
                col(Operator.disabled_at).is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    browser, operator = row
    assert browser.id is not None
    assert browser.last_seen_at is not None
    if browser.last_seen_at < now - LAST_SEEN_RESOLUTION:
        await session.execute(
            sa.update(OperatorSession).where(col(OperatorSession.id) == browser.id).values(last_seen_at=now)
        )
    return OperatorAuth(operator, browser.id, browser.second_factor_at is not None)


async def logout(session: AsyncSession, auth: OperatorAuth) -> None:
    await session.execute(
        sa.update(OperatorSession).where(col(OperatorSession.id) == auth.session_id).values(revoked_at=utc_now())
    )
    await audit.record(session, actor_of(auth.operator), "operator.sign_out", object_type="operator",
                       object_id=auth.operator.id)  # fmt: skip


async def end_sessions(session: AsyncSession, *, operator_id: int | None) -> None:
    await session.execute(
        sa.update(OperatorSession)
        .where(col(OperatorSession.operator_id) == operator_id, col(OperatorSession.revoked_at).is_(None))
        .values(revoked_at=utc_now())
    )


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str


async def start_totp(session: AsyncSession, auth: OperatorAuth, keys: Keyring) -> TotpEnrolment:
    """A new secret for an operator not enrolled yet (sealed at rest); confirmed by a code."""
    operator = auth.operator
    assert operator.id is not None
    # Locked and read again: of an enrolment being confirmed and a new secret, one goes first.
    await session.refresh(operator, with_for_update=True)
    if operator.totp_enabled_at is not None:
        raise AlreadyEnrolled()
    secret = totp.new_secret()
    operator.totp_secret = keys.seal(Purpose.TOTP_SECRET, secret.encode(), context=_totp_context(operator.id))
    session.add(operator)
    await session.flush()
    return TotpEnrolment(secret, totp.provisioning_uri(secret, account=operator.email, issuer="ordersvc console"))


async def confirm_totp(
    session: AsyncSession,
    auth: OperatorAuth,
    *,
    code: str,
    attempts: throttle.Attempts,
    ip: str,
    user_agent: str,
    settings: Settings,
    keys: Keyring,
) -> NewOperatorSession:
    """The first code from the app: the second factor is on. The enrolment session ends and a
    new one, past the second factor, takes its place (a new id: what the enrolment cookie was
    worth, it is not worth more now). Wrong codes count against the operator's sign-in throttle."""
    operator = auth.operator
    # Locked and read again: the secret checked is the one enrolled, even with another enrolment
    # session asking for a new secret at the same moment.
    await session.refresh(operator, with_for_update=True)
    if operator.totp_enabled_at is not None:
        raise AlreadyEnrolled()
    throttle_keys = _enrolment_keys(operator)
    await throttle.count_attempt(attempts, throttle_keys, what="Too many wrong codes.")
    secret = _open_secret(keys, operator)
    if secret is None or not await _take_totp_step(session, operator, secret, code):
        raise InvalidTotpCode()
    await throttle.attempt_succeeded(session, throttle_keys)
    operator.totp_enabled_at = utc_now()
    session.add(operator)
    await session.execute(
        sa.update(OperatorSession).where(col(OperatorSession.id) == auth.session_id).values(revoked_at=utc_now())
    )
    new = await _open_session(
        session, operator, ip=ip, user_agent=user_agent, settings=settings, keys=keys, second_factor=True
    )
    await audit.record(
        session, actor_of(operator, ip), "operator.totp_enrol", object_type="operator", object_id=operator.id
    )
    return new
