"""Keep the nominal index in step with the compacted notices topic.

Theory of operation
-------------------
The notices desk writes each notice's current state to ``TopicCatalog.notices``, keyed by
notice id, as a sealed envelope (a ``NoticeBody``) addressed to its recipients and
``ccc``; a hub opens it with its own key. ``NominalFeed.apply(record)`` folds one record:

* the newest version of each notice wins (an older one read later changes nothing);
* a Red Notice ``published`` (and not past ``expires_at``) whose subject is a person with
  both names puts that person in the index; any other state (suspended, cancelled,
  expired) or colour takes the notice out;
* a tombstone (empty value) removes the notice its key names;
* a record the hub cannot open (not sealed, not for ``ccc``, tampered, another body) is
  skipped and counted, never fatal: the feed must survive whatever shares the topic.

Because the topic is compacted and read from its start by every hub, any hub that takes
over rebuilds the same index: the fold depends only on the set of records.

Worked example: BEL's Red Notice ``2026-red-17`` on "Jean Dupont" arrives at version 1
(published): ``apply`` returns ``FeedOutcome.UPSERTED`` and ``index.lookup("Jean Dupont")``
finds it; version 2 (cancelled) returns ``REMOVED`` and the lookup is empty; version 1
replayed afterwards returns ``STALE``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from enum import StrEnum

import structlog

from brokers.record_headers import envelope_headers
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import NoticeBody
from schemas.checks import Person
from schemas.errors import RejectedMessage
from schemas.header import Language, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PrivateIdentity
from schemas.notices import Notice, NoticeColour, NoticeState, PersonSubject
from schemas.participants import CCC
from schemas.sealing import RandomBytes, open_sealed, parse_envelope, seal
from schemas.topics import TopicCatalog
from streams.core.clocks import as_utc
from streams.databases.nominal import NominalIndex

__all__ = ["FeedOutcome", "NominalFeed", "notice_record", "wanted_person"]

log = structlog.get_logger("i247.nominal")


class FeedOutcome(StrEnum):
    UPSERTED = "upserted"  # a Red Notice subject now in the index
    REMOVED = "removed"  # a notice out of force taken out
    IGNORED = "ignored"  # newest version, but nothing for the index (not red, no name)
    STALE = "stale"  # an older version than one already folded
    SKIPPED = "skipped"  # could not be opened as a notice: logged and counted


def wanted_person(notice: Notice, now: datetime) -> Person | None:
    """The person a notice puts in the nominal index, or None if it puts nobody there."""
    subject = notice.subject
    in_force = notice.state is NoticeState.PUBLISHED and (
        notice.expires_at is None or as_utc(notice.expires_at) > as_utc(now)
    )
    if (
        notice.colour is not NoticeColour.RED
        or not in_force
        or not isinstance(subject, PersonSubject)
        or not subject.family_name
        or not subject.forenames
    ):
        return None
    return Person(
        family_name=subject.family_name,
        forenames=subject.forenames,
        date_of_birth=subject.date_of_birth,
        nationality=subject.nationalities[0] if subject.nationalities else None,
    )


class NominalFeed:
    """Folds notices-topic records into a ``NominalIndex``; see the module docstring."""

    def __init__(
        self,
        index: NominalIndex,
        *,
        identity: PrivateIdentity,
        directory: Directory,
        max_bytes: int,
    ) -> None:
        self.index = index
        self.identity = identity
        self.directory = directory
        self.max_bytes = max_bytes
        self.versions: dict[str, int] = {}
        self.counts: Counter[FeedOutcome] = Counter()

    def apply(self, record: ReceivedRecord, now: datetime) -> FeedOutcome:
        outcome = self._fold(record, now)
        self.counts[outcome] += 1
        return outcome

    def _fold(self, record: ReceivedRecord, now: datetime) -> FeedOutcome:
        if not record.value:  # a tombstone: the notice is gone from the topic
            notice_id = (record.key or b"").decode(errors="replace")
            self.versions.pop(notice_id, None)
            return FeedOutcome.REMOVED if self.index.remove(notice_id) else FeedOutcome.IGNORED
        notice = self._open(record)
        if notice is None:
            return FeedOutcome.SKIPPED
        held = self.versions.get(notice.notice_id)
        if held is not None and notice.version < held:
            return FeedOutcome.STALE
        self.versions[notice.notice_id] = notice.version
        person = wanted_person(notice, now)
        if person is None:
            return (
                FeedOutcome.REMOVED if self.index.remove(notice.notice_id) else FeedOutcome.IGNORED
            )
        self.index.upsert(notice.notice_id, person, notice.requester)
        return FeedOutcome.UPSERTED

    def _open(self, record: ReceivedRecord) -> Notice | None:
        """The notice a record carries, or None (logged) when this hub cannot open it."""
        topic = (record.header("i247-sealed-topic") or record.topic.encode()).decode()
        key = record.header("i247-sealed-key") or record.key or b""
        try:
            sealed = parse_envelope(record.value, max_bytes=self.max_bytes)
            opened = open_sealed(
                sealed, topic=topic, key=key, directory=self.directory, identity=self.identity
            )
        except RejectedMessage as refusal:
            log.warning(
                "notice-record-skipped", offset=record.offset, key=record.key, detail=str(refusal)
            )
            return None
        if not isinstance(opened.body, NoticeBody):
            log.warning(
                "notice-record-skipped",
                offset=record.offset,
                message_id=opened.header.message_id,
                detail=f"a {opened.body.type.value} body, not a notice",
            )
            return None
        return opened.body.notice


def notice_record(
    notice: Notice,
    recipients: list[str],
    *,
    hub: PrivateIdentity,
    directory: Directory,
    topics: TopicCatalog,
    now: datetime,
    random_bytes: RandomBytes,
) -> OutboundRecord:
    """A notice's state as the feed reads it: sealed by a hub for ``recipients`` and
    ``ccc``, for the notices topic, keyed by notice id (so compaction keeps the latest)."""
    header = RoutingHeader(
        message_id=str(uuid.UUID(bytes=random_bytes(16), version=4)),
        sender=hub.participant,
        recipients=list(dict.fromkeys([*recipients, CCC])),
        message_type=MessageType.NOTICE,
        precedence=Precedence.ROUTINE,
        created_at=now,
        language=Language.EN,
        trace_id=random_bytes(16).hex(),
    )
    key = notice.notice_id.encode()
    sealed = seal(
        header,
        NoticeBody(notice=notice),
        sender=hub,
        directory=directory,
        topic=topics.notices,
        key=key,
        random_bytes=random_bytes,
    ).to_bytes()
    headers = (
        *envelope_headers(header, random_bytes(8).hex()),
        ("i247-sealed-topic", topics.notices.encode()),
        ("i247-sealed-key", key),
    )
    return OutboundRecord(topics.notices, key, sealed, headers)
