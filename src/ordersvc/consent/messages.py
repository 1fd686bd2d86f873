"""The one message the service sends: a recipient's confirmation request."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ConsentLinks:
    confirm: str
    decline: str
    opt_out: str


def confirmation_message(
    *, requester: str, orders: int, quantity: int, links: ConsentLinks, hours: int
) -> tuple[str, str, str, dict[str, str]]:
    """(subject, text, html, headers). RFC 8058 one-click unsubscribe points at the opt-out."""
    subject = f"Please confirm: {requester} wants to send you messages"
    what = f"{orders} order{'s' if orders != 1 else ''} for {quantity} message{'s' if quantity != 1 else ''} in all"
    text = (
        f"Hello,\n\n{requester} placed {what} to be delivered to this address.\n"
        "Nothing is sent to you unless you confirm.\n\n"
        f"Yes, I agree: {links.confirm}\n"
        f"No, thank you: {links.decline}\n"
        f"Never contact me again (from anyone): {links.opt_out}\n\n"
        f"These links work for {hours} hours. If you do nothing, nothing is sent.\n"
    )
    html = (
        '<!doctype html><html><body style="font-family:sans-serif;max-width:36em">'
        f"<p>Hello,</p><p><strong>{escape(requester)}</strong> placed {escape(what)} to be delivered to this "
        "address. Nothing is sent to you unless you confirm.</p>"
        f'<p><a href="{escape(links.confirm)}">Yes, I agree</a> &middot; '
        f'<a href="{escape(links.decline)}">No, thank you</a> &middot; '
        f'<a href="{escape(links.opt_out)}">Never contact me again</a></p>'
        f"<p>These links work for {hours} hours. If you do nothing, nothing is sent.</p></body></html>"
    )
    headers = {
        "List-Unsubscribe": f"<{links.opt_out}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
    }
    return subject, text, html, headers
