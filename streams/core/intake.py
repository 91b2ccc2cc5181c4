"""Intake: the CCC's first look at a record on the inbound topic, as a pure decision.

Theory of operation: ``admit`` takes one received record and everything it depends on
(the key directory, the replay memory, the roster, ``now``) and returns one outcome:

* ``Admitted``: well formed, signed and keyed by its sender, addressed to known
  participants none of which is a closed response team (``revocations``), fresh, not
  seen before; it carries its assessed precedence and the lane record to produce;
* ``Refused``: why not (a ``RejectReason`` and a detail); the shell dead-letters the record
  untouched. A record signed with a revoked key is ``key-revoked``, with a rotated-out key
  past its grace deadline ``key-expired`` (the directory's key states, ``verify``);
* ``Redelivered``: a record already admitted from the same offset. Under lane leases
  (``schemas.leases``) the earlier copy was written past the end of a previous intake
  term, so readers fence it: ``again`` is the copy to write in its place.

Checks run cheapest-first and stop at the first failure, so a refusal names one reason.
The key-is-sender check follows the signature check on purpose: the key is bound in the
signed associated data, so a record re-keyed in transit is ``tampered``, and only a record
its sender *sealed* under another key is ``key-not-sender``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from brokers.records import OutboundRecord, ReceivedRecord
from schemas import header_names as names
from schemas.errors import (
    KeyNotSender,
    MalformedMessage,
    RejectedMessage,
    RejectReason,
    StaleMessage,
    UnknownParticipant,
)
from schemas.header import RoutingHeader
from schemas.keys import Directory
from schemas.participants import CCC
from schemas.sealing import parse_envelope, verify
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages, Verdict
from streams.core.priority import Assessment, assess_priority
from streams.core.roster import DutyRoster

__all__ = [
    "Admitted",
    "IntakePolicy",
    "Outcome",
    "Redelivered",
    "Refused",
    "Revocations",
    "admit",
    "forwarding_headers",
    "unknown_signing_key",
]


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """Limits intake enforces (``I247_MAX_MESSAGE_BYTES``, ``I247_FRESHNESS_SECONDS``)."""

    max_bytes: int = 1_048_576
    freshness: timedelta = timedelta(seconds=300)
    future_skew: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Admitted:
    header: RoutingHeader
    assessment: Assessment
    site: str
    lane: OutboundRecord


@dataclass(frozen=True, slots=True)
class Refused:
    reason: RejectReason
    detail: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Redelivered:
    message_id: str
    again: Admitted


Outcome = Admitted | Refused | Redelivered


class Revocations(Protocol):
    """Participants whose keys take no new traffic (``streams.core.deployments.TeamRoster``)."""

    def check_recipients(self, recipients: Iterable[str], at: datetime) -> None:
        """Raise ``RevokedRecipient`` for a recipient revoked at ``at``."""
        ...


def forwarding_headers(
    record: ReceivedRecord, header: RoutingHeader, precedence: str, hub: str
) -> tuple[tuple[str, bytes], ...]:
    """What the CCC adds when it forwards a sender's bytes (docs/wire-format.md §7)."""
    keep = tuple((k, v) for k, v in record.headers if not k.startswith(names.BACKBONE_PREFIX))
    return (
        *keep,
        (names.SEALED_TOPIC, record.topic.encode()),
        (names.SEALED_KEY, record.key or b""),
        (names.PRECEDENCE, precedence.encode()),
        (names.HUB, hub.encode()),
        (names.ORIGIN, record.origin.encode()),
    )


def _check_recipients(header: RoutingHeader, directory: Directory) -> None:
    for recipient in header.recipients:  # the header contract already refuses hubs here
        if recipient == CCC:
            continue
        if recipient not in directory:
            raise UnknownParticipant(recipient, role="recipient")


def _check_fresh(header: RoutingHeader, now: datetime, policy: IntakePolicy) -> None:
    age = now - header.created_at
    if age > policy.freshness:
        raise StaleMessage(
            f"created {age.total_seconds():.0f} s ago, older than the "
            f"{policy.freshness.total_seconds():.0f} s freshness window"
        )
    if -age > policy.future_skew:
        raise StaleMessage(
            f"created {-age.total_seconds():.0f} s in the future; check the sender's clock"
        )


def admit(
    record: ReceivedRecord,
    *,
    now: datetime,
    directory: Directory,
    seen: SeenMessages,
    roster: DutyRoster,
    topics: TopicCatalog,
    policy: IntakePolicy,
    route_to: str | None = None,
    revocations: Revocations | None = None,
) -> Outcome:
    """Decide what becomes of one inbound record. ``seen`` is updated for admitted ones.

    Admitted traffic goes to the lanes of ``route_to`` (the hub holding intake), or, if
    None, of the hub on duty by the roster. With ``revocations``, traffic addressed to a
    participant revoked at ``now`` (a closed team) is refused as ``recipient-revoked``.
    """
    message_id: str | None = None
    try:
        if record.key is None:
            raise MalformedMessage("record has no key; inbound records are keyed by sender id")
        sealed = parse_envelope(record.value, max_bytes=policy.max_bytes)
        message_id = sealed.header.message_id
        header = verify(sealed, topic=record.topic, key=record.key, directory=directory, at=now)
        if record.key != header.sender.encode():
            raise KeyNotSender(record.key, sender=header.sender, message_id=header.message_id)
        _check_recipients(header, directory)
        if revocations is not None:
            revocations.check_recipients(header.recipients, now)
        _check_fresh(header, now, policy)
    except RejectedMessage as refusal:
        return Refused(refusal.reason, str(refusal), message_id)
    verdict = seen.observe(
        header.message_id,
        (record.topic, record.partition, record.offset),
        header.created_at,
        now,
    )
    if verdict is Verdict.REPLAY:
        return Refused(
            RejectReason.REPLAYED,
            f"message {header.message_id} was already accepted from another offset",
            header.message_id,
        )
    assessment = assess_priority(header)
    site = route_to or roster.hub_on_duty(now)
    hub = f"hub:{site}"
    lane = OutboundRecord(
        topic=topics.lane(site, assessment.precedence),
        key=header.message_id.encode(),
        value=record.value,
        headers=forwarding_headers(record, header, assessment.precedence.value, hub),
    )
    admitted = Admitted(header, assessment, site, lane)
    if verdict is Verdict.REDELIVERY:
        return Redelivered(header.message_id, admitted)
    return admitted


def unknown_signing_key(
    outcome: Outcome, record: ReceivedRecord, directory: Directory, max_bytes: int
) -> bool:
    """Whether ``outcome`` refused a signature by a key id no participant has (yet): a key
    rotated after this hub last read the key directory, worth one catch-up and a retry."""
    if not isinstance(outcome, Refused) or outcome.reason is not RejectReason.BAD_SIGNATURE:
        return False
    try:
        kid = parse_envelope(record.value, max_bytes=max_bytes).signature_kid
    except RejectedMessage:
        return False
    return kid not in directory.revoked and directory.signing_key_owner(kid) is None
