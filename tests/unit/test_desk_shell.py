"""The desks' sealing shell: what each effect becomes on the wire (decrypted here, once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody, NoticeBody
from schemas.checks import Urgency
from schemas.errors import NotARecipient
from schemas.header import HeaderFlag, MessageType, Precedence
from schemas.journal import (
    CheckDeskRefused,
    HitConfirmationRequested,
    TeamApproved,
    TeamRequested,
    VehicleReportRefused,
)
from schemas.keys import generate_identity
from schemas.notices import Notice, NoticeColour, NoticeState, PersonSubject
from schemas.sealing import OpenedMessage, open_sealed, parse_envelope
from streams.core.roster import DutyRoster
from streams.desks.context import DeskContext
from streams.desks.effects import AdmitTeam, Effect, Journal, PublishNotice, Send
from streams.desks.hub_state import HubState
from streams.desks.shell import DeskShell
from tests.unit.factories import make_header
from tests.unit.keyring import small_keyring

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOTE = MessageBody(subject="s", text="t")


@pytest.fixture
def shell(tmp_path: Path) -> DeskShell:
    directory, ids = small_keyring()
    return DeskShell(
        HubState(
            settings=Settings(data_dir=tmp_path),
            site="lyon",
            bootstrap="localhost:9092",
            directory=directory,
            identity=ids["hub:lyon"],
            roster=DutyRoster(),
            clock=lambda: NOW,
        )
    )


def open_as(shell: DeskShell, participant: str, record: OutboundRecord) -> OpenedMessage:
    _, ids = small_keyring()
    return open_sealed(
        parse_envelope(record.value, max_bytes=1 << 20),
        topic=(record.header("i247-sealed-topic") or b"").decode(),
        key=record.header("i247-sealed-key") or b"",
        directory=shell.state.directory,
        identity=ids[participant],
    )


def test_a_send_is_one_envelope_per_inbox_under_one_message_id(shell: DeskShell) -> None:
    send = Send(
        ("FRA", "DEU"), NOTE, Precedence.FLASH, "c-1", flags=(HeaderFlag.WANTED_PERSON_HIT,)
    )
    records = shell.carry_out([send], NOW)

    topics = shell.state.settings.topics
    assert [r.topic for r in records] == [topics.inbox("FRA"), topics.inbox("DEU")]
    assert len({r.key for r in records}) == 1
    for record, reader in zip(records, ("FRA", "DEU"), strict=True):
        opened = open_as(shell, reader, record)
        assert opened.body == NOTE
        assert opened.header.sender == "hub:lyon"
        assert opened.header.recipients == [reader]
        assert opened.header.message_id.encode() == record.key
        assert (opened.header.precedence, opened.header.correlation_id) == (Precedence.FLASH, "c-1")
        assert opened.header.flags == [HeaderFlag.WANTED_PERSON_HIT]
        assert opened.header.created_at == NOW
        assert record.header("i247-sealed-topic") == topics.inbound.encode()
        assert record.header("i247-precedence") == b"FLASH"
        assert record.header("i247-hub") == b"hub:lyon"
    with pytest.raises(Exception, match=r"(?i)recipient|key|decrypt|open"):
        open_as(shell, "DEU", records[0])  # sealed for FRA alone


def test_a_send_to_no_one_writes_nothing(shell: DeskShell) -> None:
    assert shell.carry_out([Send((), NOTE)], NOW) == []


def test_a_journal_effect_is_its_event_on_the_control_topic(shell: DeskShell) -> None:
    event = VehicleReportRefused(
        hub="hub:lyon", time=NOW, message_id="m-1", sender="DEU", reason="not yours"
    )
    [record] = shell.carry_out([Journal(event, "m-1")], NOW)

    assert record.topic == shell.state.settings.topics.control
    assert record.key == b"m-1"
    assert record.value == event.to_json_bytes()
    assert record.header("ce_type") == b"int.interpol.i247.control.vehicle-report-refused.v1"
    assert record.header("content-type") == b"application/json"


def test_a_body_for_ccc_is_sealed_into_the_event_and_the_event_folded(shell: DeskShell) -> None:
    body = NOTE
    event = HitConfirmationRequested(
        hub="hub:lyon",
        time=NOW,
        confirmation_id="h-1",
        correlation_id="c-1",
        owner="BEL",
        asker="FRA",
        urgency=Urgency.URGENT,
        deadline=NOW + timedelta(minutes=10),
    )
    [record] = shell.carry_out([Journal(event, "h-1", seal_for_ccc=body, fold=True)], NOW)

    written = json.loads(record.value)
    assert shell.context(NOW).open_for_ccc(written["sealed"], "h-1") == body
    assert shell.context(NOW).open_for_ccc(written["sealed"], "another-key") is None
    assert shell.state.desks.open_exchanges == 1


def test_an_admitted_team_joins_the_directory_and_awaits_its_inbox(shell: DeskShell) -> None:
    team = generate_identity("team:irt-fra-lyon-20261123").public()
    assert shell.carry_out([AdmitTeam(team)], NOW) == []
    assert team.participant in shell.state.directory
    assert shell.context(NOW).directory.get(team.participant) == team
    assert shell.take_new_inboxes() == ["i247.team.irt-fra-lyon-20261123.inbox"]
    assert shell.take_new_inboxes() == []


@dataclass
class EchoDesk:
    """Answers a message with a note to its sender and a journal line; ticks a journal line."""

    handles: frozenset[MessageType] = frozenset({MessageType.MESSAGE})

    def handle(self, ctx: DeskContext, opened: OpenedMessage) -> list[Effect]:
        refused = CheckDeskRefused(
            hub=ctx.hub,
            time=ctx.now,
            message_type=opened.header.message_type.value,
            sender=opened.header.sender,
            reason="echo",
        )
        return [Send((opened.header.sender,), NOTE), Journal(refused, "k")]

    def tick(self, ctx: DeskContext) -> list[Effect]:
        return [Journal(TeamRequested(hub=ctx.hub, time=ctx.now, request_id="r"), "r")]


def test_a_registered_desk_answers_with_records(shell: DeskShell) -> None:
    shell.register(EchoDesk())
    header = make_header(sender="FRA", recipients=["ccc"])

    out = shell.handle(OpenedMessage(header, NOTE), NOW)

    topics = shell.state.settings.topics
    assert [r.topic for r in out] == [topics.inbox("FRA"), topics.control]
    assert open_as(shell, "FRA", out[0]).body == NOTE
    [ticked] = shell.tick(NOW)
    assert json.loads(ticked.value) == {
        "event": "team-requested",
        "hub": "hub:lyon",
        "time": "2026-11-23T12:00:00.000000Z",
        "request_id": "r",
    }
    assert shell.counts["desk.message"] == 1


def test_a_type_no_desk_handles_is_counted_and_dropped(shell: DeskShell) -> None:
    shell.register(EchoDesk())
    header = make_header(sender="FRA", recipients=["ccc"], message_type=MessageType.DIFFUSION)
    assert shell.handle(OpenedMessage(header, NOTE), NOW) == []
    assert shell.counts["desk.unhandled"] == 1
    with pytest.raises(ValueError, match="already have a desk"):
        shell.register(EchoDesk())


def test_an_event_writes_the_fields_its_writer_set_and_no_others() -> None:
    facts = TeamRequested(hub="hub:lyon", time=NOW, request_id="r", requester="FRA")
    assert set(json.loads(facts.to_json_bytes())) == {
        "event",
        "hub",
        "time",
        "request_id",
        "requester",
    }
    approved = TeamApproved(hub="hub:lyon", time=NOW, request_id="r", team=None, inbox="i")
    assert json.loads(approved.to_json_bytes())["team"] is None
    assert "identity" not in json.loads(approved.to_json_bytes())


def test_a_published_notice_is_sealed_for_the_notices_topic_its_recipients_and_hubs(
    shell: DeskShell,
) -> None:
    notice = Notice(
        notice_id="red-2026-000001", request_id="9b0f3c52-8a47-4f5e-9b1f-24a7c0c1e247",
        colour=NoticeColour.RED, state=NoticeState.PUBLISHED, requester="FRA",
        subject=PersonSubject(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
        facts="f", version=3, published_at=NOW,
    )  # fmt: skip
    [record] = shell.carry_out([PublishNotice(notice, ("FRA", "DEU"))], NOW)

    topics = shell.state.settings.topics
    assert (record.topic, record.key) == (topics.notices, b"red-2026-000001")
    assert record.header("i247-notice-version") == b"3"
    _, ids = small_keyring()
    sealed = parse_envelope(record.value, max_bytes=1 << 20)
    for reader in ("DEU", "hub:singapore", "auditor"):
        opened = open_sealed(
            sealed,
            topic=topics.notices,
            key=record.key or b"",
            directory=shell.state.directory,
            identity=ids[reader],
        )
        assert opened.body == NoticeBody(notice=notice)
    with pytest.raises(NotARecipient):
        open_sealed(
            sealed,
            topic=topics.notices,
            key=record.key or b"",
            directory=shell.state.directory,
            identity=ids["ITA"],
        )
    stored = ReceivedRecord(record.topic, 0, 0, 0, record.key, record.value, record.headers)
    assert shell.open_stored(stored) is not None
    moved = ReceivedRecord(record.topic, 0, 1, 0, b"another-key", record.value, ())
    assert shell.open_stored(moved) is None  # sealed for another key: logged, skipped
