"""Builders for test data: routing headers and a small in-memory keyring.

``make_header()`` is a valid, ordinary header (FRA to DEU, a ROUTINE ``message`` in English
at ``T0``) with a fresh message id and trace id; a test names only what it is about::

    make_header(message_type=MessageType.URGENT_REQUEST, flags=[HeaderFlag.THREAT_TO_LIFE])
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from schemas.header import Language, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PrivateIdentity, generate_identity

__all__ = ["PARTICIPANTS", "T0", "make_header", "small_keyring"]

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday, Lyon on duty
PARTICIPANTS = (
    "FRA",
    "DEU",
    "ITA",
    "ESP",
    "hub:lyon",
    "hub:buenos-aires",
    "hub:singapore",
    "auditor",
)


def make_header(**overrides: Any) -> RoutingHeader:
    """A valid header; ``overrides`` replace any field (validated as usual)."""
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "sender": "FRA",
        "recipients": ["DEU"],
        "message_type": MessageType.MESSAGE,
        "precedence": Precedence.ROUTINE,
        "created_at": T0,
        "language": Language.EN,
        "trace_id": uuid.uuid4().hex,
    }
    values.update(overrides)
    return RoutingHeader(**values)


@cache
def small_keyring() -> tuple[Directory, dict[str, PrivateIdentity]]:
    """Keys for four NCBs, the three hubs and the auditor (in memory, made once)."""
    identities = {p: generate_identity(p) for p in PARTICIPANTS}
    return Directory({p: i.public() for p, i in identities.items()}), identities
