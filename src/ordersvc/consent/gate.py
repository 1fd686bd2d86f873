"""How a new order found its recipient's consent (migration 0009's `ordersvc_consent_gate`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ConsentGate:
    """The pair's consent row as the gate found it (created as `requested` if new), locked until
    the transaction ends."""

    consent_id: int
    status: str
    mailed_at: datetime | None
    expires_at: datetime | None
    mailbox: str  # the folded mailbox key the consent row is stored under
