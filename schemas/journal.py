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
here as it happens, so any hub that folds the journal (``streams.core.desk_state``) can carry
on the desks' work after a failover. No event carries a message body in clear: where a
desk needs a body later (the request a reminder repeats, a reply a consolidation
gathers), the event carries it sealed for ``ccc`` (``sealed``: base64 of a sealed
envelope, topic ``i247.control``, key the event's record key), which only hubs open.

The hubs' own events (leases, liveness, readiness) and the command line's (dead-letter
redrives, key changes) follow in a section of their own. ``parse_control_event`` reads
any record of the journal: the typed event, or ``UnknownEvent`` for one no model
describes (a newer writer's, or one not typed yet), which readers skip.

Worked example: ``ClockOpened(hub="hub:lyon", time=t, message_id="m1",
recipients=("DEU",), precedence=FLASH, deadline=t + 10 min).to_json_bytes()`` is
``{"hub":"hub:lyon","time":"...Z","event":"clock-opened","message_id":"m1",...}`` (key
order means nothing in JSON); ``parse_desk_event`` of those bytes is an equal model; of
``{"event":"hub-ready",...}`` it is ``None`` (not a desk event), while
``parse_control_event`` of the latter is a ``HubReady`` and of ``{"event":"hub-new"}`` an
``UnknownEvent(name="hub-new")``.
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


# === the hubs' and the command line's own events (not desk state) ===================
# Written by ``streams.hub.runtime``/``streams.hub.service`` (leases, liveness, life cycle) and by
# the command line (``agents.ops.dlq``, ``agents.ops.key_lifecycle``; ``hub`` is ``operator``).
# ``parse_control_event`` reads every typed event of this module, these and the desks'.


class LeaseClaimed(JournalEventModel):
    """This hub took ``unit`` at ``epoch`` and started working it from ``start``; the
    timings say how the previous owner was found gone (failover timing)."""

    event: Literal["lease-claimed"] = "lease-claimed"
    unit: str
    epoch: int
    reason: str
    previous_owner: str | None
    previous_epoch: int
    last_heard: UtcTimestamp | None
    detected_at: UtcTimestamp | None
    lease_expired_at: UtcTimestamp | None
    claimed_at: UtcTimestamp
    confirmed_at: UtcTimestamp
    start: dict[int, int]  # partition -> next offset (a decimal string key on the wire)


class LeaseReleased(JournalEventModel):
    """This hub gave ``unit`` up: ``handover`` (to ``handing_to``) or ``shutdown`` (which
    writes no ``handing_to`` at all)."""

    event: Literal["lease-released"] = "lease-released"
    unit: str
    epoch: int
    reason: str
    handing_to: str | None = None
    positions: dict[int, int]

    def to_json_bytes(self) -> bytes:
        """As written before it was typed: ``handing_to`` only when the writer gave it."""
        if "handing_to" in self.model_fields_set:
            return super().to_json_bytes()
        return self.model_dump_json(exclude={"handing_to"}).encode()


class LeaseLost(JournalEventModel):
    """Another hub holds ``unit`` (``now_owner`` at ``now_epoch``); this hub stopped."""

    event: Literal["lease-lost"] = "lease-lost"
    unit: str
    epoch: int
    now_owner: str | None
    now_epoch: int


class FirstOutput(JournalEventModel):
    """The first output of a term reached the broker, with its claim's timings."""

    event: Literal["first-output"] = "first-output"
    unit: str
    epoch: int
    reason: str | None
    previous_owner: str | None
    last_heard: UtcTimestamp | None
    claimed_at: UtcTimestamp | None
    at: UtcTimestamp


class HubReady(JournalEventModel):
    """Once per process start, after the first round of claims: the hub is ready."""

    event: Literal["hub-ready"] = "hub-ready"
    units: tuple[str, ...]


class HubResumed(JournalEventModel):
    """The hub works again after its broker was out of reach or lost its log."""

    event: Literal["hub-resumed"] = "hub-resumed"
    reason: str
    suspended_seconds: float
    fresh_log: bool
    cluster_id: str | None
    incarnation: str


class HubAlive(JournalEventModel):
    """The writing hub sees the hub at ``site`` beating again."""

    event: Literal["hub-alive"] = "hub-alive"
    site: str
    last_heard: UtcTimestamp | None
    declared_at: UtcTimestamp


class HubDead(JournalEventModel):
    """The writing hub has not heard the hub at ``site`` within the liveness timeout."""

    event: Literal["hub-dead"] = "hub-dead"
    site: str
    last_heard: UtcTimestamp | None
    declared_at: UtcTimestamp


class DeadLetterRedriven(JournalEventModel):
    """An operator re-sent the dead letter at ``deadletter_offset`` to intake, where it
    landed at ``partition``/``offset`` (``original``: topic/partition/offset refused)."""

    event: Literal["dlq-redriven"] = "dlq-redriven"
    deadletter_offset: int
    reason: str
    message_id: str | None
    original: str
    partition: int
    offset: int
    by: str


class KeyRotated(JournalEventModel):
    """An operator rotated ``participant``'s key ``kid`` (to ``new_kid``) and published
    its key set as entry ``sequence`` of the key directory."""

    event: Literal["key-rotated"] = "key-rotated"
    participant: str
    kid: str
    new_kid: str | None
    sequence: int
    reason: str | None
    by: str


class KeyRevoked(JournalEventModel):
    """An operator revoked ``participant``'s key ``kid`` (``new_kid`` replaced it, if the
    revoked key was the active one)."""

    event: Literal["key-revoked"] = "key-revoked"
    participant: str
    kid: str
    new_kid: str | None
    sequence: int
    reason: str | None
    by: str


OperationsEvent = Annotated[
    LeaseClaimed
    | LeaseReleased
    | LeaseLost
    | FirstOutput
    | HubReady
    | HubResumed
    | HubAlive
    | HubDead
    | DeadLetterRedriven
    | KeyRotated
    | KeyRevoked,
    Field(discriminator="event"),
]
"""The hubs' and the command line's own events, one model each."""


class UnknownEvent(BaseModel):
    """A record of the journal no model here describes (an event a newer writer added, one
    not typed yet, or not an event at all): readers skip it, as the contract asks."""

    model_config = ConfigDict(frozen=True)

    name: str | None  # its ``event`` field, if it has one


_MODELS: dict[str, type[JournalEventModel]] = {}


def journal_models() -> dict[str, type[JournalEventModel]]:
    """Every typed event of this module by its name: desk events, operations events, and
    any section added later (found once, on first use, from the models' classes)."""
    if not _MODELS:
        pending: list[type[JournalEventModel]] = [JournalEventModel]
        while pending:
            model = pending.pop()
            pending.extend(model.__subclasses__())
            field = model.model_fields.get("event")
            if model.__module__ == __name__ and field is not None:
                _MODELS[str(field.default)] = model
    return _MODELS


def parse_control_event(raw: bytes) -> JournalEventModel | UnknownEvent:
    """The typed event in a record of ``i247.control``, or ``UnknownEvent`` (with its name,
    if any) for an event no model describes or a value that is no JSON object.

    A known event whose fields do not validate raises ``MalformedJournalEvent``: the
    hubs and the command line write the journal, so that is a writer's bug to log.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        return UnknownEvent(name=None)
    if not isinstance(data, dict):
        return UnknownEvent(name=None)
    return _typed(data, raw)


def control_event_of(data: dict[str, object]) -> JournalEventModel | UnknownEvent:
    """``parse_control_event`` of a journal event already read as JSON."""
    return _typed(data, None)


def _typed(data: dict[str, object], raw: bytes | None) -> JournalEventModel | UnknownEvent:
    """Validated as the JSON it was written as: nested strict models (a team event's
    ``deployment``) take their enums and times from JSON strings only in JSON mode."""
    name = data.get("event")
    model = journal_models().get(name) if isinstance(name, str) else None
    if model is None:
        return UnknownEvent(name=name if isinstance(name, str) else None)
    try:
        return model.model_validate_json(raw if raw is not None else json.dumps(data))
    except ValidationError as invalid:
        raise MalformedJournalEvent(
            f"journal event {name!r} does not validate: {invalid.errors()[:3]}"
        ) from invalid


__all__ += [  # the operations section's names, kept apart from the desks'
    "DeadLetterRedriven",
    "FirstOutput",
    "HubAlive",
    "HubDead",
    "HubReady",
    "HubResumed",
    "KeyRevoked",
    "KeyRotated",
    "LeaseClaimed",
    "LeaseLost",
    "LeaseReleased",
    "OperationsEvent",
    "UnknownEvent",
    "control_event_of",
    "journal_models",
    "parse_control_event",
]


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


# === events the desks write, typed for their effects (``streams.desks.effects.Journal``) ===
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
