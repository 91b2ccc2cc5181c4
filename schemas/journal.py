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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from schemas.checks import Urgency
from schemas.header import Precedence, UtcTimestamp
from schemas.teams import Deployment

__all__ = [
    "DESK_EVENTS",
    "TEAM_SNAPSHOT_EVENTS",
    "CheckAnswered",
    "CheckDeskRefused",
    "CheckDeskUndeliverable",
    "CheckHitEscalated",
    "ClockOpened",
    "ClockStopped",
    "ClocksOpened",
    "ClocksStopped",
    "DeskEvent",
    "DiffusionNotRecorded",
    "DiffusionRecallRefused",
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
    "NoticeActionRefused",
    "NoticeBroadcast",
    "NoticeDecided",
    "NoticeDeskFailed",
    "NoticeRequested",
    "NoticeTransitioned",
    "OpenedClock",
    "RenewalPrompted",
    "StoppedClock",
    "TeamApproved",
    "TeamArrived",
    "TeamClosed",
    "TeamConverted",
    "TeamDeclined",
    "TeamDispatched",
    "TeamPhaseCompleted",
    "TeamRefused",
    "TeamReportAccepted",
    "TeamRequested",
    "TeamSnapshotEvent",
    "VehicleCirculated",
    "VehicleReportRefused",
    "WrittenFieldsEvent",
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


# === events the desks write, typed for their effects (``streams.desk_effects.Journal``) ===
# Not desk state: nothing folds them into ``DeskState`` (they stay out of ``DeskEvent``).
# Each writes exactly the fields its writer gave (``to_json_bytes`` leaves unset ones out),
# as ``journal_record`` wrote them before: some writers leave a cataloged field out.


class WrittenFieldsEvent(JournalEventModel):
    """A journal event that writes the fields its writer set, and no others."""

    def to_json_bytes(self) -> bytes:
        written = set(self.model_fields_set) | {"hub", "time"}
        fields = self.model_dump(mode="json", include=written)
        return json.dumps({"event": self.event_name, **fields}).encode()


class VehicleCirculated(WrittenFieldsEvent):
    """A stolen-vehicle report was circulated to the teams it concerns."""

    event: Literal["vehicle-circulated"] = "vehicle-circulated"
    message_id: str
    vin: str
    reporter: str
    registration_country: str
    teams: tuple[str, ...]
    unreachable: tuple[str, ...]


class VehicleReportRefused(WrittenFieldsEvent):
    """A stolen-vehicle report the vehicle desk would not take."""

    event: Literal["vehicle-report-refused"] = "vehicle-report-refused"
    message_id: str
    sender: str
    reason: str


class CheckDeskRefused(WrittenFieldsEvent):
    """A message the checks desk would not take (a query's refusal has no ``message_id``)."""

    event: Literal["check-desk-refused"] = "check-desk-refused"
    message_id: str | None = None
    message_type: str
    sender: str
    reason: str


class CheckDeskUndeliverable(WrittenFieldsEvent):
    """An answer the checks desk could not seal for its recipients."""

    event: Literal["check-desk-undeliverable"] = "check-desk-undeliverable"
    message_type: str
    recipients: tuple[str, ...]
    detail: str


class TeamSnapshotEvent(WrittenFieldsEvent):
    """A step of a deployment with its snapshot (``schemas.team_journal``); a request whose
    host is no member makes no deployment, so its events carry the facts alone."""

    request_id: str
    team: str | None = None
    state: str | None = None
    kind: str | None = None
    host: str | None = None
    deployment: Deployment | None = None


class TeamRequested(TeamSnapshotEvent):
    event: Literal["team-requested"] = "team-requested"
    requester: str | None = None


class TeamDeclined(TeamSnapshotEvent):
    event: Literal["team-declined"] = "team-declined"
    requester: str | None = None
    reasons: tuple[str, ...] | None = None


class TeamApproved(TeamSnapshotEvent):
    event: Literal["team-approved"] = "team-approved"
    identity: dict[str, Any] | None = None
    inbox: str | None = None


class TeamDispatched(TeamSnapshotEvent):
    event: Literal["team-dispatched"] = "team-dispatched"


class TeamArrived(TeamSnapshotEvent):
    event: Literal["team-arrived"] = "team-arrived"


class TeamConverted(TeamSnapshotEvent):
    event: Literal["team-converted"] = "team-converted"
    by: str | None = None


class TeamPhaseCompleted(TeamSnapshotEvent):
    event: Literal["team-phase-completed"] = "team-phase-completed"


class TeamClosed(TeamSnapshotEvent):
    event: Literal["team-closed"] = "team-closed"
    by: str | None = None


class TeamReportAccepted(WrittenFieldsEvent):
    """A team report was accepted."""

    event: Literal["team-report"] = "team-report"
    request_id: str
    team: str | None
    message_id: str
    phase: str | None
    phase_complete: bool
    counts: dict[str, int]


class TeamRefused(WrittenFieldsEvent):
    """A team message the desk would not take, with the reason."""

    event: Literal["team-refused"] = "team-refused"
    request_id: str | None
    message_id: str
    sender: str
    type: str
    reason: str


TEAM_SNAPSHOT_EVENTS: dict[str, type[TeamSnapshotEvent]] = {
    model.model_fields["event"].default: model
    for model in (
        TeamRequested,
        TeamDeclined,
        TeamApproved,
        TeamDispatched,
        TeamArrived,
        TeamConverted,
        TeamPhaseCompleted,
        TeamClosed,
    )
}
"""The model of each snapshot event, by its name (``schemas.team_journal.SNAPSHOT_EVENT``)."""


class NoticeRequested(WrittenFieldsEvent):
    """A notice request reached the notice desk."""

    event: Literal["notice-requested"] = "notice-requested"
    notice_id: str
    request_id: str
    requester: str
    sender: str
    colour: str
    region: str | None


class NoticeTransitioned(WrittenFieldsEvent):
    """A notice moved in its lifecycle (suspend, reinstate, renew, cancel, expire...)."""

    event: Literal["notice-transition"] = "notice-transition"
    notice_id: str
    transition: str
    from_state: str
    to_state: str
    version: int
    by: str


class NoticeActionRefused(WrittenFieldsEvent):
    """A notice action the desk would not take."""

    event: Literal["notice-action-refused"] = "notice-action-refused"
    notice_id: str
    action: str
    by: str
    why: str


class NoticeBroadcast(WrittenFieldsEvent):
    """A notice's state was sent to its scope (``recipients``: inbox copies written)."""

    event: Literal["notice-broadcast"] = "notice-broadcast"
    notice_id: str
    version: int
    state: str
    region: str | None
    recipients: int


class RenewalPrompted(WrittenFieldsEvent):
    """The requester was prompted to renew a notice; ``expires_at`` in Python isoformat."""

    event: Literal["renewal-prompted"] = "renewal-prompted"
    notice_id: str
    requester: str
    version: int
    expires_at: str


class NoticeDeskFailed(WrittenFieldsEvent):
    """A message to the notice desk could not be handled (a fault; the message skipped)."""

    event: Literal["notice-desk-failed"] = "notice-desk-failed"
    message_id: str
    type: str


class DiffusionNotRecorded(WrittenFieldsEvent):
    """A diffusion the desk could not record."""

    event: Literal["diffusion-not-recorded"] = "diffusion-not-recorded"
    diffusion_id: str
    sender: str


class DiffusionRecallRefused(WrittenFieldsEvent):
    """A recall the desk would not carry out."""

    event: Literal["diffusion-recall-refused"] = "diffusion-recall-refused"
    diffusion_id: str
    by: str
    why: str
