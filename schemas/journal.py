"""Typed events of the operations journal (``i247.control``): one frozen model per event.

Theory of operation
-------------------
Every journal event is a UTF-8 JSON object ``{"event", "hub", "time", ...fields}``
(``schemas.control_events`` catalogs them for the contract). The models here are those
events as pydantic models, gathered in one union discriminated by ``event``, so a writer
builds an event (``ClockOpened(hub=..., time=..., message_id=...)``) and writes its bytes
(``to_json_bytes``), and a reader gets a typed event back (``parse_desk_event``) instead of
picking keys out of a dict. Readers ignore fields they do not know (``extra="ignore"``),
so a writer may add a field without breaking an older reader.

The desk events come first: everything a hub's desks keep in memory (handling clocks,
hit-confirmation exchanges, multi-country windows, returned notice requests) is written
here as it happens, so any hub that folds the journal (``streams.desk_state``) can carry
on the desks' work after a failover. No event carries a message body in clear: where a
desk needs a body later (the request a reminder repeats, a reply a consolidation
gathers), the event carries it sealed for ``ccc`` (``sealed``: base64 of a sealed
envelope, topic ``i247.control``, key the event's record key), which only hubs open.
Other journal events can move onto this module one model at a time.

Worked example: ``ClockOpened(hub="hub:lyon", time=t, message_id="m1",
recipients=("DEU",), precedence=FLASH, deadline=t + 10 min).to_json_bytes()`` is
``{"event":"clock-opened","hub":"hub:lyon","time":"...Z","message_id":"m1",...}``;
``parse_desk_event`` of those bytes is an equal model; of ``{"event":"hub-ready",...}``
it is ``None`` (not a desk event).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from schemas.checks import Urgency
from schemas.header import Precedence, UtcTimestamp

__all__ = [
    "DESK_EVENTS",
    "CheckAnswered",
    "CheckHitEscalated",
    "ClockOpened",
    "ClockStopped",
    "ClocksOpened",
    "ClocksStopped",
    "DeskEvent",
    "DiffusionRecalled",
    "DiffusionRecorded",
    "HandlingBreach",
    "HitConfirmationBreach",
    "HitConfirmationReminder",
    "HitConfirmationRequested",
    "HitConfirmed",
    "JournalEventModel",
    "MalformedJournalEvent",
    "MultiCountryConsolidated",
    "MultiCountryOpened",
    "MultiCountryReplied",
    "NoticeDecided",
    "OpenedClock",
    "StoppedClock",
    "parse_desk_event",
]


class MalformedJournalEvent(ValueError):
    """A known journal event whose fields do not validate: a writer's bug, not the wire's."""


class JournalEventModel(BaseModel):
    """What every journal event has: its name, the hub that wrote it, and when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    hub: str
    time: UtcTimestamp

    @property
    def event_name(self) -> str:
        """The ``event`` field of a concrete event model."""
        return str(getattr(self, "event"))  # noqa: B009 - declared by each subclass

    def to_json_bytes(self) -> bytes:
        """The event as written on the journal (times as RFC 3339 UTC, six digits, ``Z``)."""
        return self.model_dump_json().encode()


# --- handling clocks ---------------------------------------------------------------


class ClockOpened(JournalEventModel):
    """A hub delivered a message whose recipients must acknowledge it by ``deadline``."""

    event: Literal["clock-opened"] = "clock-opened"
    message_id: str
    recipients: tuple[str, ...]
    precedence: Precedence
    deadline: UtcTimestamp


class ClockStopped(JournalEventModel):
    """``recipient`` acknowledged ``message_id`` at ``time`` (any hub delivered the ack)."""

    event: Literal["clock-stopped"] = "clock-stopped"
    message_id: str
    recipient: str


class OpenedClock(BaseModel):
    """One clock of a ``clocks-opened`` batch (started at the event's ``time``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: str
    recipients: tuple[str, ...]
    precedence: Precedence
    deadline: UtcTimestamp


class ClocksOpened(JournalEventModel):
    """The clocks one batch of deliveries started: ``clock-opened`` for each, in one record."""

    event: Literal["clocks-opened"] = "clocks-opened"
    clocks: tuple[OpenedClock, ...]


class StoppedClock(BaseModel):
    """One acknowledgement of a ``clocks-stopped`` batch, delivered ``at``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: str
    recipient: str
    at: UtcTimestamp


class ClocksStopped(JournalEventModel):
    """The acknowledgements one batch of deliveries carried: ``clock-stopped`` for each."""

    event: Literal["clocks-stopped"] = "clocks-stopped"
    stops: tuple[StoppedClock, ...]


class HandlingBreach(JournalEventModel):
    """A message was not acknowledged by every recipient within its handling objective."""

    event: Literal["handling-breach"] = "handling-breach"
    message_id: str
    precedence: Precedence
    started_at: UtcTimestamp
    deadline: UtcTimestamp
    unacknowledged: tuple[str, ...]
    late_seconds: float


# --- checks (not desk state: what the checks desk did, for operators and the books) ------


class CheckAnswered(JournalEventModel):
    """A check request was answered."""

    event: Literal["check-answered"] = "check-answered"
    correlation_id: str
    asker: str
    items: int
    hits: int
    escalations: int
    confirmations: int


class CheckHitEscalated(JournalEventModel):
    """A hit was escalated as FLASH to the hub on duty and the parties concerned."""

    event: Literal["check-hit-escalated"] = "check-hit-escalated"
    correlation_id: str
    item_index: int
    database: str
    owner: str | None
    hub_on_duty: str | None
    recipients: tuple[str, ...]
    flag: str
    precedence: str


# --- hit confirmations ---------------------------------------------------------------


class HitConfirmationRequested(JournalEventModel):
    """The record's owner was asked to confirm a hit by ``deadline``; ``sealed`` is the
    request sealed for ``ccc`` (the reminder repeats it)."""

    event: Literal["hit-confirmation-requested"] = "hit-confirmation-requested"
    confirmation_id: str
    correlation_id: str
    owner: str
    asker: str | None = None
    urgency: Urgency
    deadline: UtcTimestamp
    sealed: str | None = None


class HitConfirmed(JournalEventModel):
    """The owner answered; ``in_time`` as the writing hub judged it."""

    event: Literal["hit-confirmed"] = "hit-confirmed"
    confirmation_id: str
    owner: str
    confirmed: bool
    in_time: bool


class HitConfirmationReminder(JournalEventModel):
    """The owner was reminded at half time."""

    event: Literal["hit-confirmation-reminder"] = "hit-confirmation-reminder"
    confirmation_id: str
    owner: str
    deadline: UtcTimestamp


class HitConfirmationBreach(JournalEventModel):
    """No confirmation by the deadline: escalated to the hub on duty."""

    event: Literal["hit-confirmation-breach"] = "hit-confirmation-breach"
    confirmation_id: str
    owner: str
    asker: str
    urgency: Urgency
    late_seconds: float
    hub_on_duty: str


# --- multi-country windows ----------------------------------------------------------


class MultiCountryOpened(JournalEventModel):
    """A multi-country query's window opened; it closes at ``closes_at``."""

    event: Literal["multi-country-opened"] = "multi-country-opened"
    query_id: str
    asker: str
    targets: tuple[str, ...]
    closes_at: UtcTimestamp


class MultiCountryReplied(JournalEventModel):
    """A target replied; an ``accepted`` reply carries its body sealed for ``ccc``."""

    event: Literal["multi-country-reply"] = "multi-country-reply"
    query_id: str
    responder: str
    outcome: str
    sealed: str | None = None


class MultiCountryConsolidated(JournalEventModel):
    """The answers were consolidated for the asker; ``silent`` did not reply."""

    event: Literal["multi-country-consolidated"] = "multi-country-consolidated"
    query_id: str
    asker: str
    answered: tuple[str, ...]
    silent: tuple[str, ...]


# --- notice requests and diffusions ----------------------------------------------------


class NoticeDecided(JournalEventModel):
    """The notice desk decided a request; a ``returned`` one waits, at ``version``, for
    the requester to complete it."""

    event: Literal["notice-decided"] = "notice-decided"
    notice_id: str
    request_id: str
    requester: str
    decision: str
    reasons: tuple[str, ...] = ()
    version: int | None = None


class DiffusionRecorded(JournalEventModel):
    """A diffusion was recorded with the NCBs it reached: the addressing a recall needs."""

    event: Literal["diffusion-recorded"] = "diffusion-recorded"
    diffusion_id: str
    sender: str
    region: str | None = None
    recipients: int
    reached: tuple[str, ...]


class DiffusionRecalled(JournalEventModel):
    """A diffusion was recalled from its recipients."""

    event: Literal["diffusion-recalled"] = "diffusion-recalled"
    diffusion_id: str
    reason: str
    by: str
    sender: str
    recipients: int


DeskEvent = Annotated[
    ClockOpened
    | ClockStopped
    | ClocksOpened
    | ClocksStopped
    | HandlingBreach
    | HitConfirmationRequested
    | HitConfirmed
    | HitConfirmationReminder
    | HitConfirmationBreach
    | MultiCountryOpened
    | MultiCountryReplied
    | MultiCountryConsolidated
    | NoticeDecided
    | DiffusionRecorded
    | DiffusionRecalled,
    Field(discriminator="event"),
]

_DESK_EVENT: TypeAdapter[DeskEvent] = TypeAdapter(DeskEvent)

DESK_EVENTS: frozenset[str] = frozenset(
    {
        "clock-opened",
        "clock-stopped",
        "clocks-opened",
        "clocks-stopped",
        "handling-breach",
        "hit-confirmation-requested",
        "hit-confirmed",
        "hit-confirmation-reminder",
        "hit-confirmation-breach",
        "multi-country-opened",
        "multi-country-reply",
        "multi-country-consolidated",
        "notice-decided",
        "diffusion-recorded",
        "diffusion-recalled",
    }
)


def parse_desk_event(raw: bytes) -> DeskEvent | None:
    """The desk event in ``raw``; ``None`` for any other journal event (or not JSON).

    A desk event whose fields do not validate raises ``MalformedJournalEvent``: hubs
    write the journal, so that is a writer's bug to log, not input to refuse.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") not in DESK_EVENTS:
        return None
    try:
        return _DESK_EVENT.validate_python(data)
    except ValidationError as invalid:
        raise MalformedJournalEvent(
            f"journal event {data.get('event')!r} does not validate: {invalid.errors()[:3]}"
        ) from invalid
