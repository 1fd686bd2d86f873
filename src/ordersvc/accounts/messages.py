"""Mail to an account's owner: verify the address, reset the password, confirm a new address,
the note sent when someone signs up with an address that already has an account, and the notice
that a webhook endpoint was disabled. Links
point at the dashboard, which reads the token from the URL fragment (never sent to a server,
so it stays out of access logs and Referer headers)."""

from __future__ import annotations

from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.config import Settings
from ordersvc.outbox import service as outbox

_TEXTS = {
    "verify_email": (
        "Verify your email address for ordersvc",
        "Someone, probably you, signed up for ordersvc with this address. "
        "Follow the link to verify it and choose your password.",
        "Verify my address and choose a password",
        "#/verify/",
        "The link works for 48 hours and once. If it was not you, ignore this message: "
        "no account can be used without it.",
    ),
    "change_email": (
        "Confirm your new email address for ordersvc",
        "Your ordersvc account asked to use this address from now on.",
        "Use this address",
        "#/verify/",
        "The link works for 48 hours. If it was not you, ignore this message: nothing changes.",
    ),
    "reset_password": (
        "Reset your ordersvc password",
        "Someone, probably you, asked to reset the password of the ordersvc account with this address.",
        "Choose a new password",
        "#/reset/",
        "The link works for 1 hour and once. If it was not you, ignore this message: your password stays.",
    ),
    "webhook_disabled": (
        "A webhook endpoint of your ordersvc account was disabled",
        "Every delivery to one of your webhook endpoints failed for 5 days, so it was disabled: it gets no "
        "more events.",
        "See its deliveries",
        "#/webhooks",
        "Once the endpoint answers again, enable it in the dashboard and resend the failed deliveries.",
    ),
    "already_registered": (
        "Your ordersvc account",
        "Someone, probably you, tried to sign up for ordersvc (or to move an account to this address), "
        "but this address already has an account.",
        "Sign in",
        "#/login",
        'Forgot the password? Use "Forgot password" on the sign-in page. If it was not you, ignore this message.',
    ),
}


def account_message(kind: str, *, public_url: str, token: str | None) -> tuple[str, str, str]:
    """(subject, text, html)."""
    subject, intro, action, path, outro = _TEXTS[kind]
    link = f"{public_url.rstrip('/')}/{path}{token or ''}"
    text = f"Hello,\n\n{intro}\n\n{action}: {link}\n\n{outro}\n"
    html = (
        '<!doctype html><html><body style="font-family:sans-serif;max-width:36em">'
        f'<p>Hello,</p><p>{escape(intro)}</p><p><a href="{escape(link)}">{escape(action)}</a></p>'
        f"<p>{escape(outro)}</p></body></html>"
    )
    return subject, text, html


async def send_account_message(
    session: AsyncSession, settings: Settings, to_email: str, kind: str, *, token: str | None = None
) -> None:
    """Queue the message in the outbox (sent after the transaction commits, by the mailer)."""
    subject, text, html = account_message(kind, public_url=settings.public_url, token=token)
    await outbox.enqueue(
        session, to_email=to_email, subject=subject, body_text=text, body_html=html, headers={}, purpose="account"
    )
