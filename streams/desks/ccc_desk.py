"""How the hub speaks as the CCC: messages sealed from the hub, and bodies sealed for ``ccc``.

``seal_from_hub`` is how the desks' shell (``streams.desks.shell``) writes a ``Send``: the
body is sealed as the hub, for the inbound topic (as any sender's message is), once per
recipient, each copy to that recipient's inbox under one message id. A broadcast to 196
bureaus costs 196 small seals (a signature and one key wrap each), not one envelope of 196
wraps copied 196 times: that made every bureau read and digest all 196 wraps (35 KB,
2.5-11 ms a copy on two cores) and the broker carry 6.8 MB per notice.

``seal_for_ccc``/``open_for_ccc``: a body a journal event carries that only hubs may read.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime

from brokers.record_headers import envelope_headers
from brokers.records import OutboundRecord
from schemas.bodies import Body
from schemas.errors import RejectedMessage
from schemas.header import HeaderFlag, Language, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import CCC
from schemas.sealing import RandomBytes, open_sealed, parse_envelope, seal
from schemas.topics import TopicCatalog

__all__ = ["open_for_ccc", "seal_for_ccc", "seal_from_hub"]


def seal_from_hub(
    body: Body,
    recipients: Sequence[str],
    *,
    hub: PrivateIdentity,
    directory: Directory,
    topics: TopicCatalog,
    now: datetime,
    random_bytes: RandomBytes,
    precedence: Precedence = Precedence.ROUTINE,
    correlation_id: str | None = None,
    trace_id: str | None = None,
    flags: Sequence[HeaderFlag] = (),
    language: Language = Language.EN,
) -> tuple[RoutingHeader, list[OutboundRecord]]:
    """One message from the hub to ``recipients`` (NCBs or teams): one envelope per inbox.

    Every copy carries the same message id; each is sealed for its own recipient alone, so
    a broadcast to 196 bureaus writes 196 small records (one key wrap each) and a reader
    opens only its own, rather than 196 copies of one envelope holding 196 wraps (35 KB
    each, read and digested whole by every bureau). The header returned names them all.
    """
    header = RoutingHeader(
        message_id=str(uuid.UUID(bytes=random_bytes(16), version=4)),
        sender=hub.participant,
        recipients=list(recipients),
        message_type=MessageType(body.type),
        precedence=precedence,
        created_at=now,
        language=language,
        correlation_id=correlation_id,
        trace_id=trace_id or random_bytes(16).hex(),
        flags=list(flags),
    )
    key = header.message_id.encode()
    copies = []
    for recipient in recipients:
        own = header.model_copy(update={"recipients": [recipient]})
        sealed = seal(
            own,
            body,
            sender=hub,
            directory=directory,
            topic=topics.inbound,
            key=key,
            random_bytes=random_bytes,
        ).to_bytes()
        headers = (
            *envelope_headers(own, random_bytes(8).hex()),
            ("i247-sealed-topic", topics.inbound.encode()),
            ("i247-sealed-key", key),
            ("i247-precedence", precedence.value.encode()),
            ("i247-hub", hub.participant.encode()),
        )
        copies.append(OutboundRecord(topics.inbox(recipient), key, sealed, headers))
    return header, copies


def seal_for_ccc(
    body: Body,
    *,
    hub: PrivateIdentity,
    directory: Directory,
    topic: str,
    key: str,
    now: datetime,
    random_bytes: RandomBytes,
) -> str:
    """``body`` sealed for ``ccc`` (every hub), as base64 text for a journal event on
    ``topic`` under ``key``: how a desk event carries a body no one else may read."""
    header = RoutingHeader(
        message_id=str(uuid.UUID(bytes=random_bytes(16), version=4)),
        sender=hub.participant,
        recipients=[CCC],
        message_type=MessageType(body.type),
        precedence=Precedence.ROUTINE,
        created_at=now,
        language=Language.EN,
        correlation_id=key[:128],
        trace_id=random_bytes(16).hex(),
    )
    sealed = seal(
        header,
        body,
        sender=hub,
        directory=directory,
        topic=topic,
        key=key.encode(),
        random_bytes=random_bytes,
    )
    return base64.b64encode(sealed.to_bytes()).decode("ascii")


def open_for_ccc(
    text: str,
    *,
    hub: PrivateIdentity,
    directory: Directory,
    topic: str,
    key: str,
    max_bytes: int,
) -> Body | None:
    """The body ``seal_for_ccc`` sealed, opened with this hub's key; ``None`` if it does not
    open (the caller logs it: the journal is the CCC's own, so that is a fault)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        sealed = parse_envelope(raw, max_bytes=max_bytes)
        opened = open_sealed(
            sealed, topic=topic, key=key.encode(), directory=directory, identity=hub
        )
    except (RejectedMessage, binascii.Error, ValueError):
        return None
    return opened.body
