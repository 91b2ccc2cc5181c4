"""The operations journal's events (``i247.control``), described from their JSON keys.

The hubs and the command line write these events as typed models (``schemas.journal``,
through ``brokers.journal_records``); the desks' events not typed yet go through
``streams.desks.hub_state.journal_record``. This catalog adds what the models do not say (each
event's record key, its summary, its fields' JSON types) for the published contract
(``docs/asyncapi.yaml``, ``docs/wire-format.md`` §13). Unit tests
(``tests/unit/test_contract.py``) hold every typed model to its entry field for field, and
read the untyped writers' source for event names and literal fields the catalog lacks.

Every event is a UTF-8 JSON object ``{"event", "hub", "time", ...fields}``: ``event`` its
name, ``hub`` the writing hub (``hub:lyon``), ``time`` the hub's clock when written
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``). Readers must ignore fields they do not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.team_journal import TeamEvent

__all__ = ["COMMON_FIELDS", "CONTROL_EVENTS", "ControlEventSpec", "control_ce_type"]

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_STR_OR_NULL: Schema = {"type": ["string", "null"]}
_TIME: Schema = {"type": "string", "description": "RFC 3339 UTC, six fraction digits"}
_TIME_OR_NULL: Schema = {"type": ["string", "null"], "description": _TIME["description"]}
_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}
_BOOL: Schema = {"type": "boolean"}
_STRS: Schema = {"type": "array", "items": _STR}
_POSITIONS: Schema = {
    "type": "object",
    "description": "partition (decimal string) -> next offset to process",
    "additionalProperties": {"type": "integer"},
}
_SEALED: Schema = {
    "type": ["string", "null"],
    "description": "base64 of a sealed envelope addressed to ccc (topic i247.control, key "
    "the record key): the body the desk needs later, readable by hubs alone",
}
_DEPLOYMENT: Schema = {"$ref": "Deployment"}  # the contract resolves it to schemas.teams

COMMON_FIELDS: dict[str, Schema] = {
    "event": _STR,
    "hub": {"type": "string", "description": "the writing hub, e.g. hub:lyon"},
    "time": _TIME,
}


def control_ce_type(event: str) -> str:
    """The ``ce_type`` header of a journal event (its ``content-type`` is application/json)."""
    return f"int.interpol.i247.control.{event}.v1"


@dataclass(frozen=True, slots=True)
class ControlEventSpec:
    """One journal event: its name, its record key, why it is written, and its fields
    (each present unless named in ``optional``: some writers leave it out)."""

    name: str
    key: str
    summary: str
    fields: dict[str, Schema]
    optional: frozenset[str] = frozenset()


def _e(name: str, key: str, summary: str, **fields: Schema) -> ControlEventSpec:
    return ControlEventSpec(name, key, summary, fields)


def _optional(spec: ControlEventSpec, *names: str) -> ControlEventSpec:
    """``spec`` with ``names`` marked as left out by some writers."""
    optional = frozenset(names) & set(spec.fields)
    return ControlEventSpec(spec.name, spec.key, spec.summary, spec.fields, optional)


_LEASES = (
    _e(
        "lease-claimed",
        "the unit",
        "This hub took a unit (intake or a lane) at a new epoch and started working it.",
        unit=_STR,
        epoch=_INT,
        reason=_STR,
        previous_owner=_STR_OR_NULL,
        previous_epoch=_INT,
        last_heard=_TIME_OR_NULL,
        detected_at=_TIME_OR_NULL,
        lease_expired_at=_TIME_OR_NULL,
        claimed_at=_TIME,
        confirmed_at=_TIME,
        start=_POSITIONS,
    ),
    _optional(
        _e(
            "lease-released",
            "the unit",
            "This hub gave a unit up: reason `handover` (to `handing_to`) or `shutdown`.",
            unit=_STR,
            epoch=_INT,
            reason=_STR,
            handing_to=_STR_OR_NULL,
            positions=_POSITIONS,
        ),
        "handing_to",
    ),
    _e(
        "lease-lost",
        "the unit",
        "Another hub holds a unit this hub was working; it stopped.",
        unit=_STR,
        epoch=_INT,
        now_owner=_STR_OR_NULL,
        now_epoch=_INT,
    ),
    _e(
        "first-output",
        "the unit",
        "The first output of a term reached the broker (failover timing).",
        unit=_STR,
        epoch=_INT,
        reason=_STR_OR_NULL,
        previous_owner=_STR_OR_NULL,
        last_heard=_TIME_OR_NULL,
        claimed_at=_TIME_OR_NULL,
        at=_TIME,
    ),
    _e(
        "hub-ready",
        "the writing hub (hub:lyon)",
        "Written once per process start, after its first round of claims: the hub is ready.",
        units=_STRS,
    ),
    _e(
        "hub-resumed",
        "the writing hub (hub:lyon)",
        "The hub works again after its broker was out of reach or lost its log: a new "
        "runtime, leases claimed anew (fresh_log: the log was lost and provisioned again).",
        reason=_STR,
        suspended_seconds=_NUM,
        fresh_log=_BOOL,
        cluster_id=_STR_OR_NULL,
        incarnation=_STR,
    ),
    _e(
        "hub-alive",
        "the site observed (lyon)",
        "The writing hub sees the hub at `site` beating again.",
        site=_STR,
        last_heard=_TIME_OR_NULL,
        declared_at=_TIME,
    ),
    _e(
        "hub-dead",
        "the site observed (lyon)",
        "The writing hub has not heard the hub at `site` within the liveness timeout.",
        site=_STR,
        last_heard=_TIME_OR_NULL,
        declared_at=_TIME,
    ),
)

_DELIVERY = (
    _e(
        "clock-opened",
        "the message id",
        "A hub delivered a message whose recipients must acknowledge it by `deadline` (its "
        "handling objective); every hub folds it, the hub holding intake breaches it.",
        message_id=_STR,
        recipients=_STRS,
        precedence=_STR,
        deadline=_TIME,
    ),
    _e(
        "clock-stopped",
        "the acknowledged message id",
        "A hub delivered `recipient`'s acknowledgement of `message_id` at `time`.",
        message_id=_STR,
        recipient=_STR,
    ),
    _e(
        "clocks-opened",
        "the writing hub",
        "The clocks one handled batch of deliveries started, each as in `clock-opened` "
        "(started at `time`): what the hubs write, once per batch and lane partition.",
        clocks={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message_id": _STR,
                    "recipients": _STRS,
                    "precedence": _STR,
                    "deadline": _TIME,
                },
                "required": ["message_id", "recipients", "precedence", "deadline"],
            },
        },
    ),
    _e(
        "clocks-stopped",
        "the writing hub",
        "The acknowledgements one handled batch of deliveries carried, each as in "
        "`clock-stopped` at its own `at`.",
        stops={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"message_id": _STR, "recipient": _STR, "at": _TIME},
                "required": ["message_id", "recipient", "at"],
            },
        },
    ),
    _e(
        "handling-breach",
        "the message id",
        "A message was not acknowledged by every recipient within its handling objective.",
        message_id=_STR,
        precedence=_STR,
        started_at=_TIME,
        deadline=_TIME,
        unacknowledged=_STRS,
        late_seconds=_NUM,
    ),
)

_NOTICES = (
    _e(
        "notice-requested",
        "the notice id",
        "A notice request reached the notice desk.",
        notice_id=_STR,
        request_id=_STR,
        requester=_STR,
        sender=_STR,
        colour=_STR,
        region=_STR_OR_NULL,
    ),
    _e(
        "notice-decided",
        "the notice id",
        "The review's outcome: published, refused or returned, with reason codes.",
        notice_id=_STR,
        request_id=_STR,
        requester=_STR,
        decision=_STR,
        reasons=_STRS,
        version={
            "type": ["integer", "null"],
            "description": "a returned request's notice version, which its completion follows",
        },
    ),
    _e(
        "notice-transition",
        "the notice id",
        "A notice moved in its lifecycle (suspend, reinstate, renew, cancel, expire...).",
        notice_id=_STR,
        transition=_STR,
        from_state=_STR,
        to_state=_STR,
        version=_INT,
        by=_STR,
    ),
    _e(
        "notice-action-refused",
        "the notice id",
        "A notice action the desk would not take.",
        notice_id=_STR,
        action=_STR,
        by=_STR,
        why=_STR,
    ),
    _e(
        "notice-broadcast",
        "the notice id",
        "A notice's state was sent to its scope.",
        notice_id=_STR,
        version=_INT,
        state=_STR,
        region=_STR_OR_NULL,
        recipients=_INT,
    ),
    _e(
        "renewal-prompted",
        "the notice id",
        "The requester was prompted to renew a notice before it expires.",
        notice_id=_STR,
        requester=_STR,
        version=_INT,
        expires_at={"type": "string", "description": "Python isoformat, offset +00:00"},
    ),
    _e(
        "notice-desk-failed",
        "the message id",
        "A message to the notice desk could not be handled.",
        message_id=_STR,
        type=_STR,
    ),
    _e(
        "diffusion-recorded",
        "the diffusion id",
        "A diffusion was recorded, with the NCBs it reached (every hub folds it).",
        diffusion_id=_STR,
        sender=_STR,
        region=_STR_OR_NULL,
        recipients=_INT,
        reached=_STRS,
    ),
    _e(
        "diffusion-not-recorded",
        "the message id",
        "A diffusion the desk could not record.",
        diffusion_id=_STR,
        sender=_STR,
    ),
    _e(
        "diffusion-recalled",
        "the diffusion id",
        "A diffusion was recalled from its recipients.",
        diffusion_id=_STR,
        reason=_STR,
        by=_STR,
        sender=_STR,
        recipients=_INT,
    ),
    _e(
        "diffusion-recall-refused",
        "the diffusion id",
        "A recall the desk would not carry out.",
        diffusion_id=_STR,
        by=_STR,
        why=_STR,
    ),
)

_SNAPSHOT: dict[str, Schema] = {
    "request_id": _STR,
    "team": _STR_OR_NULL,
    "state": _STR,
    "kind": _STR,
    "host": _STR,
    "deployment": _DEPLOYMENT,
}
_TEAM_SUMMARY = {
    TeamEvent.REQUESTED: "A team request was received.",
    TeamEvent.DECLINED: "A team request was declined.",
    TeamEvent.APPROVED: "A team exists: `identity` is its public keys, `inbox` its topic.",
    TeamEvent.DISPATCHED: "An approved team was dispatched.",
    TeamEvent.ARRIVED: "A team arrived in its host country.",
    TeamEvent.CONVERTED: "An IMEST became an IRT.",
    TeamEvent.PHASE_COMPLETED: "A DVI team completed a phase.",
    TeamEvent.CLOSED: "A deployment closed: from `deployment.closed_at` the team is revoked.",
}
_TEAM_EXTRA: dict[TeamEvent, dict[str, Schema]] = {
    TeamEvent.REQUESTED: {"requester": _STR},
    TeamEvent.DECLINED: {"requester": _STR, "reasons": _STRS},
    TeamEvent.APPROVED: {
        "identity": {"type": "object", "description": "directory.json entry (§8)"},
        "inbox": _STR,
    },
    TeamEvent.CONVERTED: {"by": _STR},
    TeamEvent.CLOSED: {"by": _STR},
}
# a request whose host is no member makes no deployment: only the facts are journaled
_NO_DEPLOYMENT = ("team", "state", "kind", "host", "deployment", "requester", "reasons")
_TEAMS = (
    *(
        _optional(
            _e(event.value, "the request id", summary, **_SNAPSHOT, **_TEAM_EXTRA.get(event, {})),
            *(_NO_DEPLOYMENT if event in (TeamEvent.REQUESTED, TeamEvent.DECLINED) else ()),
        )
        for event, summary in _TEAM_SUMMARY.items()
    ),
    _e(
        TeamEvent.REPORT.value,
        "the request id",
        "A team report was accepted.",
        request_id=_STR,
        team=_STR_OR_NULL,
        message_id=_STR,
        phase=_STR_OR_NULL,
        phase_complete=_BOOL,
        counts={"type": "object", "additionalProperties": _INT},
    ),
    _e(
        TeamEvent.REFUSED.value,
        "the request id, or the message id",
        "A team message the desk would not take, with the reason.",
        request_id=_STR_OR_NULL,
        message_id=_STR,
        sender=_STR,
        type=_STR,
        reason=_STR,
    ),
)

_CHECKS = (
    _e(
        "check-answered",
        "the check's correlation id",
        "A check request was answered.",
        correlation_id=_STR,
        asker=_STR,
        items=_INT,
        hits=_INT,
        escalations=_INT,
        confirmations=_INT,
    ),
    _e(
        "check-hit-escalated",
        "the check's correlation id",
        "A hit was escalated as FLASH to the hub on duty and the parties concerned.",
        correlation_id=_STR,
        item_index=_INT,
        database=_STR,
        owner=_STR_OR_NULL,
        hub_on_duty=_STR_OR_NULL,
        recipients=_STRS,
        flag=_STR,
        precedence=_STR,
    ),
    _optional(
        _e(
            "hit-confirmation-requested",
            "the confirmation id",
            "The record's owner was asked to confirm a hit.",
            confirmation_id=_STR,
            correlation_id=_STR,
            owner=_STR,
            asker=_STR,
            urgency=_STR,
            deadline=_TIME,
            sealed=_SEALED,
        ),
        "asker",
        "sealed",
    ),
    _e(
        "hit-confirmed",
        "the confirmation id",
        "The owner answered a confirmation request.",
        confirmation_id=_STR,
        owner=_STR,
        confirmed=_BOOL,
        in_time=_BOOL,
    ),
    _e(
        "hit-confirmation-reminder",
        "the confirmation id",
        "The owner was reminded of a confirmation due soon.",
        confirmation_id=_STR,
        owner=_STR,
        deadline=_TIME,
    ),
    _e(
        "hit-confirmation-breach",
        "the confirmation id",
        "A confirmation was not given in time.",
        confirmation_id=_STR,
        owner=_STR,
        asker=_STR,
        urgency=_STR,
        late_seconds=_NUM,
        hub_on_duty=_STR,
    ),
    _e(
        "multi-country-opened",
        "the query id",
        "A multi-country query was opened; it closes at `closes_at`.",
        query_id=_STR,
        asker=_STR,
        targets=_STRS,
        closes_at=_TIME,
    ),
    _optional(
        _e(
            "multi-country-reply",
            "the query id",
            "A target replied to a multi-country query; an accepted reply carries it sealed.",
            query_id=_STR,
            responder=_STR,
            outcome=_STR,
            sealed=_SEALED,
        ),
        "sealed",
    ),
    _e(
        "multi-country-consolidated",
        "the query id",
        "The answers were consolidated for the asker; `silent` did not reply.",
        query_id=_STR,
        asker=_STR,
        answered=_STRS,
        silent=_STRS,
    ),
    _optional(
        _e(
            "check-desk-refused",
            "the message id, or the query id",
            "A message the checks desk would not take.",
            message_id=_STR,
            message_type=_STR,
            sender=_STR,
            reason=_STR,
        ),
        "message_id",
    ),
    _e(
        "check-desk-undeliverable",
        "the correlation id, or the body type",
        "An answer the checks desk could not seal for its recipients.",
        message_type=_STR,
        recipients=_STRS,
        detail=_STR,
    ),
    _e(
        "vehicle-circulated",
        "the message id",
        "A stolen-vehicle report was circulated to the teams it concerns.",
        message_id=_STR,
        vin=_STR,
        reporter=_STR,
        registration_country=_STR,
        teams=_STRS,
        unreachable=_STRS,
    ),
    _e(
        "vehicle-report-refused",
        "the message id",
        "A stolen-vehicle report the vehicle desk would not take.",
        message_id=_STR,
        sender=_STR,
        reason=_STR,
    ),
)

_OPERATIONS = (
    _e(
        "dlq-redriven",
        "the message id (ce_id) of the dead letter, else deadletter-<offset>",
        "An operator re-sent a dead letter to intake (`i247 dlq redrive`); written by the "
        "command line, `hub` is `operator`.",
        deadletter_offset=_INT,
        reason=_STR,
        message_id=_STR_OR_NULL,
        original={"type": "string", "description": "topic/partition/offset it was refused at"},
        partition=_INT,
        offset=_INT,
        by=_STR,
    ),
    *(
        _e(
            f"key-{verb}",
            "the participant id",
            f"An operator {verb} a participant's key (`i247 keys {command}`) and published "
            "its key set on the key directory topic; written by the command line, `hub` is "
            "`operator`.",
            participant=_STR,
            kid={"type": "string", "description": f"the key {verb}"},
            new_kid={"type": ["string", "null"], "description": "the key that replaced it"},
            sequence={"type": "integer", "description": "the key directory entry's sequence"},
            reason=_STR_OR_NULL,
            by=_STR,
        )
        for verb, command in (("rotated", "rotate"), ("revoked", "revoke"))
    ),
)

CONTROL_EVENTS: dict[str, ControlEventSpec] = {
    spec.name: spec for spec in (*_LEASES, *_DELIVERY, *_NOTICES, *_TEAMS, *_CHECKS, *_OPERATIONS)
}
"""Every event the hubs (and the command line) journal today, by name, in the order the
contract lists them."""
