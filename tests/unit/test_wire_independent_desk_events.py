"""A second reader and writer of the desk events (docs/wire-format.md §13.1), written from
the document alone, checked against the project's writers and fold in both directions.

The first half never imports the project: it folds handling clocks, hit confirmations,
multi-country windows and returned notice requests from plain JSON as §13.1 says. The
second half has the project write events (``schemas.journal``, ``journal_event``,
``seal_for_ccc``) for this reader, and this writer write events for the project's fold
(``streams.core.desk_state``), and checks both owe the same. Where the document leaves a
choice open, the reading taken is marked READING.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

# ======================= the independent reader (docs/wire-format.md) ===================

Json = dict[str, Any]
DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
OUTCOMES = {"accepted", "late", "duplicate", "not-targeted", "unknown"}


def moment(text: Any) -> datetime:
    assert isinstance(text, str)
    assert TIME.fullmatch(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Clock:
    recipients: set[str]
    deadline: datetime
    stopped: set[str] = field(default_factory=set)


@dataclass
class Desks:
    """§13.1 folded: what the hub holding intake owes, from the events alone."""

    clocks: dict[str, Clock] = field(default_factory=dict)
    early_stops: dict[tuple[str, str], datetime] = field(default_factory=dict)
    ended: set[tuple[str, str]] = field(default_factory=set)
    exchanges: dict[str, Json] = field(default_factory=dict)
    early_confirmations: dict[str, Json] = field(default_factory=dict)
    windows: dict[str, Json] = field(default_factory=dict)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    returned: dict[str, int] = field(default_factory=dict)

    def fold(self, event: Json) -> None:
        name, at = event["event"], moment(event["time"])
        assert isinstance(event["hub"], str)
        if name == "clocks-opened":  # each as a clock-opened with the batch's time
            for clock in event["clocks"]:
                self.fold(
                    {**clock, "event": "clock-opened", "hub": event["hub"], "time": event["time"]}
                )
        elif name == "clocks-stopped":  # each as a clock-stopped at its own `at`
            for stop in event["stops"]:
                single = {"message_id": stop["message_id"], "recipient": stop["recipient"]}
                self.fold(
                    {**single, "event": "clock-stopped", "hub": event["hub"], "time": stop["at"]}
                )
        elif name == "clock-opened":
            key = event["message_id"]
            if ("clock", key) in self.ended:
                return
            clock = self.clocks.setdefault(
                key, Clock(set(), moment(event["deadline"]))
            )  # READING: a second open keeps the first deadline
            clock.recipients |= set(event["recipients"])
            for r in event["recipients"]:
                early = self.early_stops.pop((key, r), None)
                if early is not None and early <= clock.deadline:
                    clock.stopped.add(r)
            self._close(key)
        elif name == "clock-stopped":
            key, who = event["message_id"], event["recipient"]
            if ("clock", key) in self.ended:
                return
            if key not in self.clocks:
                self.early_stops[(key, who)] = at
            elif at <= self.clocks[key].deadline:
                self.clocks[key].stopped.add(who)
                self._close(key)
        elif name == "handling-breach":
            self.clocks.pop(event["message_id"], None)
            self.ended.add(("clock", event["message_id"]))
        elif name == "hit-confirmation-requested":
            cid = event["confirmation_id"]
            if ("exchange", cid) not in self.ended:
                self.exchanges.setdefault(cid, event)
                confirmation = self.early_confirmations.pop(cid, None)
                if confirmation is not None:
                    self.fold(confirmation)
        elif name == "hit-confirmed":
            cid = event["confirmation_id"]
            exchange = self.exchanges.get(cid)
            if exchange is None:
                if ("exchange", cid) not in self.ended:
                    self.early_confirmations[cid] = event
            elif event["owner"] == exchange["owner"] and at <= moment(exchange["deadline"]):
                del self.exchanges[cid]
                self.ended.add(("exchange", cid))
        elif name == "hit-confirmation-breach":
            self.exchanges.pop(event["confirmation_id"], None)
            self.ended.add(("exchange", event["confirmation_id"]))
        elif name == "multi-country-opened":
            if ("window", event["query_id"]) not in self.ended:
                self.windows.setdefault(event["query_id"], event)
                self.answers.setdefault(event["query_id"], {})
        elif name == "multi-country-reply":
            assert event["outcome"] in OUTCOMES
            opened = self.windows.get(event["query_id"])
            if (
                opened is not None
                and event["outcome"] == "accepted"
                and event["responder"] in opened["targets"]
                and at <= moment(opened["closes_at"])
            ):
                self.answers[event["query_id"]].setdefault(event["responder"], event["sealed"])
        elif name == "multi-country-consolidated":
            self.windows.pop(event["query_id"], None)
            self.ended.add(("window", event["query_id"]))
        elif name == "notice-decided":
            if event["decision"] == "returned":
                self.returned[event["request_id"]] = event["version"]
            elif event["decision"] in ("published", "refused"):
                self.returned.pop(event["request_id"], None)

    def _close(self, key: str) -> None:
        clock = self.clocks[key]
        if clock.stopped >= clock.recipients:
            del self.clocks[key]
            self.ended.add(("clock", key))

    def breaches(self, now: datetime) -> dict[str, list[str]]:
        """Clocks past their deadline: message id -> unacknowledged, sorted."""
        return {
            key: sorted(c.recipients - c.stopped)
            for key, c in self.clocks.items()
            if now > c.deadline
        }

    def escalations(self, now: datetime) -> set[str]:
        return {cid for cid, e in self.exchanges.items() if now > moment(e["deadline"])}

    def consolidations(self, now: datetime) -> dict[str, tuple[list[str], list[str]]]:
        """Windows complete or ended: query id -> (answered, silent), sorted."""
        out = {}
        for qid, opened in self.windows.items():
            answered = sorted(self.answers[qid])
            silent = sorted(set(opened["targets"]) - set(answered))
            if not silent or now > moment(opened["closes_at"]):
                out[qid] = (answered, silent)
        return out


def worked_example() -> list[Json]:
    """§13.1's worked example, read from the document itself."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### 13.1 Desk events")
    section = text[start : text.index("\n## ", start)]
    example = section[section.index("Worked example") :]
    return [json.loads(j.replace("\n", "")) for j in re.findall(r"`(\{.*?\})`", example, re.S)]


def sealed_envelope(text: str) -> Json:
    """§13.1: ``sealed`` is base64 (with padding) of an envelope (§2) to ``ccc``."""
    raw = base64.b64decode(text, validate=True)
    assert base64.b64encode(raw).decode() == text
    envelope: Json = json.loads(raw)
    assert envelope["envelope"] == 1
    assert envelope["header"]["recipients"] == ["ccc"]
    assert "ccc" not in {w["recipient"] for w in envelope["wrapped_keys"]}
    return envelope


# --- the document's own example ------------------------------------------------------


def test_the_documents_worked_example_breaches_the_silent_recipient() -> None:
    events = worked_example()
    assert [e["event"] for e in events] == ["clock-opened", "clock-stopped"]
    desks = Desks()
    for event in events:
        desks.fold(event)
    deadline = moment(events[0]["deadline"])
    assert desks.breaches(deadline) == {}
    assert desks.breaches(deadline + timedelta(seconds=1)) == {"m1": ["ITA"]}


# ======================= against the project ============================================

from schemas.checks import MultiCountryReply, Urgency  # noqa: E402
from schemas.header import MessageType, Precedence  # noqa: E402
from schemas.journal import (  # noqa: E402
    ClockOpened,
    ClockStopped,
    DeskEvent,
    HitConfirmationRequested,
    HitConfirmed,
    MultiCountryOpened,
    MultiCountryReplied,
    NoticeDecided,
    parse_desk_event,
)
from streams.core.delivery import Acknowledge, ClockBatch, DeliveryPlan  # noqa: E402
from streams.core.desk_state import DeskState  # noqa: E402
from streams.desks.ccc_desk import open_for_ccc, seal_for_ccc  # noqa: E402
from streams.desks.hub_state import journal_event  # noqa: E402
from tests.unit.factories import T0, make_header  # noqa: E402
from tests.unit.test_wire_independent_journals import hub_state, read_control  # noqa: E402


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_worked_example_folds_alike_in_the_project() -> None:
    state = DeskState(settle=timedelta(0))
    for event in worked_example():
        parsed = parse_desk_event(json.dumps(event).encode())
        assert parsed is not None
        state.fold(parsed)
    deadline = moment(worked_example()[0]["deadline"])
    (breach,) = state.due_clocks(deadline + timedelta(seconds=1))
    assert (breach.message_id, breach.unacknowledged) == ("m1", ("ITA",))


def test_the_projects_desk_events_read_and_fold_as_documented() -> None:
    hub = hub_state()
    control = hub.settings.topics.control
    sealed = seal_for_ccc(
        MultiCountryReply(query_id="q1", responder="DEU", answer="Known: file 77", replied_at=T0),
        hub=hub.identity,
        directory=hub.directory,
        topic=control,
        key="q1",
        now=T0,
        random_bytes=os.urandom,
    )
    written: list[DeskEvent] = [
        ClockOpened(hub=hub.hub, time=at(0), message_id="m1", recipients=("DEU", "ITA"),
                    precedence=Precedence.FLASH, deadline=at(20)),
        ClockStopped(hub=hub.hub, time=at(1), message_id="m2", recipient="ESP"),  # early
        ClockOpened(hub=hub.hub, time=at(0), message_id="m2", recipients=("ESP",),
                    precedence=Precedence.ROUTINE, deadline=at(20)),
        ClockStopped(hub=hub.hub, time=at(3), message_id="m1", recipient="DEU"),
        HitConfirmationRequested(hub=hub.hub, time=at(0), confirmation_id="c1",
                                 correlation_id="f1", owner="BEL", asker="FRA",
                                 urgency=Urgency.URGENT, deadline=at(20)),
        HitConfirmationRequested(hub=hub.hub, time=at(0), confirmation_id="c2",
                                 correlation_id="f1", owner="NLD", asker="FRA",
                                 urgency=Urgency.URGENT, deadline=at(20)),
        HitConfirmed(hub=hub.hub, time=at(5), confirmation_id="c1", owner="BEL",
                     confirmed=True, in_time=True),
        MultiCountryOpened(hub=hub.hub, time=at(0), query_id="q1", asker="FRA",
                           targets=("DEU", "ITA"), closes_at=at(20)),
        MultiCountryReplied(hub=hub.hub, time=at(2), query_id="q1", responder="DEU",
                            outcome="accepted", sealed=sealed),
        NoticeDecided(hub=hub.hub, time=at(0), notice_id="red-r1", request_id="r1",
                      requester="FRA", decision="returned", reasons=("no-judicial-basis",),
                      version=3),
    ]  # fmt: skip
    desks, state = Desks(), DeskState(settle=timedelta(0))
    for event in written:
        out = journal_event(hub, event, "k")
        read = read_control(out.key or b"", out.value, list(out.headers))
        desks.fold(read)
        state.fold(event)
    assert b"Known: file 77" not in b"".join(journal_event(hub, e, "k").value for e in written)
    later = at(21)
    assert desks.breaches(later) == {"m1": ["ITA"]}
    assert {b.message_id: list(b.unacknowledged) for b in state.due_clocks(later)} == {
        "m1": ["ITA"]
    }
    assert desks.escalations(later) == {"c2"}
    assert {e.confirmation_id for e in state.due_confirmations(later)} == {"c2"}
    assert desks.consolidations(later) == {"q1": (["DEU"], ["ITA"])}
    (owed,) = state.due_windows(later)
    assert (list(owed.answers), owed.silent) == (["DEU"], ("ITA",))
    assert desks.returned == state.returned == {"r1": 3}
    # the sealed reply: an envelope to ccc, which a hub opens
    assert sealed_envelope(desks.answers["q1"]["DEU"])["header"]["sender"] == "hub:lyon"
    reply = open_for_ccc(
        desks.answers["q1"]["DEU"],
        hub=hub.identity,
        directory=hub.directory,
        topic=control,
        key="q1",
        max_bytes=hub.settings.max_message_bytes,
    )
    assert isinstance(reply, MultiCountryReply)
    assert reply.answer == "Known: file 77"


def test_the_projects_batched_clock_events_read_and_fold_as_documented() -> None:
    hub = hub_state()
    batch = ClockBatch()
    for recipient in ("DEU", "ITA"):
        header = make_header(recipients=[recipient], precedence=Precedence.FLASH)
        plan = DeliveryPlan(header, Precedence.FLASH, clocked_recipients=(recipient,))
        batch.add(plan, now=at(0), objective=timedelta(seconds=20))
    first = header.message_id  # ITA's message
    ack = make_header(message_type=MessageType.ACKNOWLEDGEMENT, sender="ITA")
    batch.add(
        DeliveryPlan(ack, Precedence.FLASH, acknowledge=Acknowledge(first, "ITA")),
        now=at(5),
        objective=timedelta(seconds=20),
    )
    desks, state = Desks(), DeskState(settle=timedelta(0))
    for event in batch.take(hub=hub.hub, now=at(6)):
        out = journal_event(hub, event, hub.hub)
        read = read_control(out.key or b"", out.value, list(out.headers))
        assert read["event"] in ("clocks-opened", "clocks-stopped")
        desks.fold(read)
        state.fold(event)
    later = at(21)
    assert list(desks.breaches(later).values()) == [["DEU"]]
    assert [b.unacknowledged for b in state.due_clocks(later)] == [("DEU",)]


def independent_events() -> list[Json]:
    """Events as this client writes them (READING: compact JSON is as good as any)."""
    hub = "hub:buenos-aires"
    return [
        {"event": "clock-stopped", "hub": hub, "time": write_time(at(2)),
         "message_id": "m9", "recipient": "DEU", "note": "a field the reader skips"},
        {"event": "clock-opened", "hub": hub, "time": write_time(at(0)), "message_id": "m9",
         "recipients": ["DEU", "FRA"], "precedence": "IMMEDIATE", "deadline": write_time(at(30))},
        {"event": "hub-ready", "hub": hub, "time": write_time(at(0)), "units": []},
        {"event": "multi-country-opened", "hub": hub, "time": write_time(at(0)),
         "query_id": "q9", "asker": "ITA", "targets": ["AUT"], "closes_at": write_time(at(30))},
        {"event": "multi-country-reply", "hub": hub, "time": write_time(at(3)),
         "query_id": "q9", "responder": "AUT", "outcome": "accepted", "sealed": None},
    ]  # fmt: skip


@pytest.mark.parametrize("when", [10, 31])
def test_events_this_client_writes_fold_alike_in_the_project(when: float) -> None:
    desks, state = Desks(), DeskState(settle=timedelta(0))
    for event in independent_events():
        parsed = parse_desk_event(json.dumps(event, separators=(",", ":")).encode())
        if event["event"] == "hub-ready":
            assert parsed is None
            continue
        assert parsed is not None
        desks.fold(event)
        state.fold(parsed)
    now = at(when)
    breaches = {b.message_id: list(b.unacknowledged) for b in state.due_clocks(now)}
    assert breaches == desks.breaches(now)
    windows = {w.query_id: (list(w.answers), list(w.silent)) for w in state.due_windows(now)}
    assert windows == desks.consolidations(now) == {"q9": (["AUT"], [])}
