"""The hubs' and the command line's journal events as typed models (``schemas.journal``):
each writes the JSON its untyped writer wrote (the fixtures are that old format, built
the way ``journal_record`` and the command line built them), reads back equal, and the
one reader of the journal, ``parse_control_event``, tells unknown events apart."""

from __future__ import annotations

import json
import os
import typing
from datetime import timedelta
from typing import Any

import pytest

from agents.ops.dlq import redriven_event
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas import journal
from schemas.control_events import CONTROL_EVENTS
from schemas.header import format_timestamp
from schemas.header_names import CE_ID, DLQ_PREFIX
from schemas.journal import (
    ClockStopped,
    HubReady,
    JournalEventModel,
    LeaseReleased,
    MalformedJournalEvent,
    UnknownEvent,
    control_event_of,
    journal_models,
    parse_control_event,
)
from schemas.teams import DeploymentState
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState, journal_event, journal_record
from tests.unit.factories import T0, small_keyring
from tests.unit.team_factories import make_deployment

STAMP = format_timestamp(T0)
LATER = format_timestamp(T0 + timedelta(seconds=2, microseconds=7))

OLD_FIELDS: dict[str, dict[str, Any]] = {  # as the hubs wrote them with journal_record
    "lease-claimed": {
        "unit": "intake",
        "epoch": 3,
        "reason": "failover",
        "previous_owner": "lyon",
        "previous_epoch": 2,
        "last_heard": STAMP,
        "detected_at": LATER,
        "lease_expired_at": None,
        "claimed_at": LATER,
        "confirmed_at": LATER,
        "start": {"0": 40, "2": 9},
    },
    "lease-released": {  # a handover names its successor
        "unit": "i247.hub.lyon.flash",
        "epoch": 4,
        "reason": "handover",
        "handing_to": "lyon",
        "positions": {"0": 12},
    },
    "lease-lost": {"unit": "intake", "epoch": 2, "now_owner": "singapore", "now_epoch": 3},
    "first-output": {
        "unit": "intake",
        "epoch": 3,
        "reason": None,
        "previous_owner": None,
        "last_heard": None,
        "claimed_at": None,
        "at": LATER,
    },
    "hub-ready": {"units": ["i247.hub.lyon.flash", "intake"]},
    "hub-resumed": {
        "reason": "broker-unreachable",
        "suspended_seconds": 12.345,
        "fresh_log": True,
        "cluster_id": None,
        "incarnation": "0a1b2c3d4e5f6071",
    },
    "hub-alive": {"site": "singapore", "last_heard": LATER, "declared_at": LATER},
    "hub-dead": {"site": "singapore", "last_heard": None, "declared_at": STAMP},
}
SHUTDOWN = {  # a shutdown wrote no handing_to at all
    "unit": "intake",
    "epoch": 4,
    "reason": "shutdown",
    "positions": {},
}
OPERATOR_EVENTS: dict[str, dict[str, Any]] = {  # as the command line wrote them
    "dlq-redriven": {
        "deadletter_offset": 9,
        "reason": "stale",
        "message_id": None,
        "original": "i247.inbound/2/49",
        "partition": 1,
        "offset": 500,
        "by": "alice",
    },
    "key-rotated": {
        "participant": "FRA",
        "kid": "k1",
        "new_kid": "k2",
        "sequence": 4,
        "reason": None,
        "by": "alice",
    },
    "key-revoked": {
        "participant": "FRA",
        "kid": "k2",
        "new_kid": None,
        "sequence": 5,
        "reason": "compromised",
        "by": "bob",
    },
}


def hub_state() -> HubState:
    directory, identities = small_keyring()
    return HubState(
        settings=Settings(),
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=identities["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: T0,
        random_bytes=os.urandom,
    )


def typed(raw: bytes) -> JournalEventModel:
    event = parse_control_event(raw)
    assert isinstance(event, JournalEventModel), event
    return event


@pytest.mark.parametrize(
    ("name", "fields"), [*OLD_FIELDS.items(), ("lease-released", SHUTDOWN)], ids=str
)
def test_a_hub_event_writes_what_journal_record_wrote(name: str, fields: dict[str, Any]) -> None:
    state = hub_state()
    old = journal_record(state, name, "k", fields)
    event = typed(old.value)
    assert type(event) is journal_models()[name]
    new = journal_event(state, event, "k")
    assert json.loads(new.value) == json.loads(old.value)
    assert (new.topic, new.key) == (old.topic, old.key)
    assert [h for h in new.headers if h[0] != CE_ID] == [h for h in old.headers if h[0] != CE_ID]
    assert typed(new.value) == event


@pytest.mark.parametrize(("name", "fields"), OPERATOR_EVENTS.items(), ids=str)
def test_an_operator_event_writes_what_the_command_line_wrote(
    name: str, fields: dict[str, Any]
) -> None:
    old = {"event": name, "hub": "operator", "time": STAMP, **fields}
    event = typed(json.dumps(old).encode())
    assert event.hub == "operator"
    assert json.loads(event.to_json_bytes()) == old


def test_the_redrive_writer_writes_the_old_format() -> None:
    fields = (("reason", "stale"), ("topic", "i247.inbound"), ("partition", "2"), ("offset", "49"))
    headers = tuple((DLQ_PREFIX + name, value.encode()) for name, value in fields)
    dead = ReceivedRecord("i247.deadletter", 0, 9, 0, b"FRA", b"{}", headers)
    out = redriven_event(dead, (1, 500), control="i247.control", by="alice", now=T0, event_id="e-1")
    expected = {"event": "dlq-redriven", "hub": "operator", "time": STAMP}
    assert json.loads(out.value) == expected | OPERATOR_EVENTS["dlq-redriven"]
    assert out.key == b"deadletter-9"


def test_a_release_writes_handing_to_only_when_given() -> None:
    common: dict[str, Any] = {"hub": "hub:lyon", "time": T0, "unit": "intake", "epoch": 1}
    shutdown = LeaseReleased(**common, reason="shutdown", positions={0: 3})
    assert "handing_to" not in json.loads(shutdown.to_json_bytes())
    handover = LeaseReleased(**common, reason="handover", handing_to=None, positions={0: 3})
    assert json.loads(handover.to_json_bytes())["handing_to"] is None


def test_desk_events_read_through_the_same_union() -> None:
    stop = ClockStopped(hub="hub:lyon", time=T0, message_id="m1", recipient="DEU")
    assert parse_control_event(stop.to_json_bytes()) == stop


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b'{"event":"hub-exploded","hub":"hub:lyon","time":"x"}', "hub-exploded"),
        (b'{"hub":"hub:lyon"}', None),
        (b'{"event":7}', None),
        (b"[1, 2]", None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_an_unknown_event_is_named_for_readers_to_skip(raw: bytes, name: str | None) -> None:
    assert parse_control_event(raw) == UnknownEvent(name=name)


def test_a_known_event_that_does_not_validate_is_a_writers_bug() -> None:
    with pytest.raises(MalformedJournalEvent, match="hub-ready"):
        parse_control_event(b'{"event":"hub-ready","hub":"hub:lyon","time":"yesterday"}')
    with pytest.raises(MalformedJournalEvent, match="lease-claimed"):
        control_event_of({"event": "lease-claimed", "hub": "hub:lyon", "time": STAMP})


def test_readers_ignore_fields_they_do_not_know() -> None:
    raw = {"event": "hub-ready", "hub": "hub:lyon", "time": STAMP, "units": [], "new": 1}
    assert control_event_of(raw) == HubReady(hub="hub:lyon", time=T0, units=())


def test_every_model_of_the_module_is_read_and_cataloged() -> None:
    models = {
        str(model.model_fields["event"].default): model
        for model in vars(journal).values()
        if isinstance(model, type)
        and issubclass(model, JournalEventModel)
        and "event" in model.model_fields
    }
    assert journal_models() == models
    assert set(models) <= set(CONTROL_EVENTS)
    assert set(OLD_FIELDS) | set(OPERATOR_EVENTS) <= set(models)


OPERATIONS = typing.get_args(typing.get_args(journal.OperationsEvent)[0])


@pytest.mark.parametrize("model", OPERATIONS, ids=lambda m: m.__name__)
def test_an_operations_event_may_be_null_where_the_catalog_says(
    model: type[JournalEventModel],
) -> None:
    spec = CONTROL_EVENTS[str(model.model_fields["event"].default)]
    for name, field in model.model_fields.items():
        if name in ("event", "hub", "time"):
            continue
        documented = spec.fields[name].get("type")
        nullable = isinstance(documented, list) and "null" in documented
        assert (type(None) in typing.get_args(field.annotation)) == nullable, name


def test_a_team_event_with_its_deployment_reads_back_from_its_json() -> None:
    deployment = make_deployment(DeploymentState.APPROVED)
    written = journal.TeamApproved(
        hub="hub:lyon",
        time=T0,
        request_id=deployment.request_id,
        team=deployment.team,
        state=deployment.state.value,
        deployment=deployment,
    ).to_json_bytes()
    assert (
        journal.parse_control_event(written).model_dump()
        == journal.control_event_of(json.loads(written)).model_dump()
    )
    read = journal.control_event_of(json.loads(written))
    assert isinstance(read, journal.TeamApproved)
    assert read.deployment == deployment
