"""Database checks end to end: a real hub with small databases, on a real broker.

An IMEST (a team enrolled for the test) screens a flight; NCBs answer the CCC's hit
confirmations and multi-country queries through ``agents.sim.check_traffic.CheckResponder``.
Clocks run 30x fast: an urgent confirmation is due in 20 s, reminded at 10 s.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter, Opened
from agents.sim.check_traffic import CheckResponder, enrol_team, provision_team_inbox
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    HitConfirmationRequest,
    MultiCountryQuery,
    PersonItem,
    TravelDocumentItem,
)
from schemas.header import HeaderFlag, Precedence
from schemas.keys import Directory, PrivateIdentity, load_directory, load_identity
from schemas.notices import Notice, NoticeColour, NoticeState, PersonSubject
from streams.databases import open_configured
from streams.desks.nominal_feed import notice_record
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

TEAM = "team:imest-test"


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    """A hub with 1% databases (SLTD 10k) and a team in its key directory."""
    own_keys = tmp_path / "keys-with-team"
    shutil.copytree(keys_dir, own_keys)
    enrol_team(own_keys, TEAM)
    identities = dict(keyring[1], **{TEAM: load_identity(own_keys, TEAM)})
    settings = settings.model_copy(update={"db_scale": 0.01, "clock_scale": 30.0})
    open_configured(settings).close()  # built here once; the hub opens the same files
    async with running(
        settings, own_keys, (load_directory(own_keys), identities), tmp_path, start_hub=False
    ) as rig:
        await provision_team_inbox(rig.settings, TEAM)
        rig.env["I247_DB_SCALE"] = "0.01"
        yield rig


async def start(rig: Backbone) -> None:
    rig.start_hub()
    await rig.wait_ready()


def adapter(rig: Backbone, participant: str) -> NcbAdapter:
    return NcbAdapter(rig.identities[participant], rig.directory, rig.settings.topics)


async def send_to_ccc(rig: Backbone, sender: str, body: Any) -> None:
    _, record = adapter(rig, sender).compose(["ccc"], body, now=now(), random_bytes=os.urandom)
    await rig.send(record)


def opened(items: Sequence[object]) -> list[Opened]:
    return [i for i in items if isinstance(i, Opened)]


def has_type(records: list[Any], message_type: str) -> bool:
    """Whether a record's envelope header (in clear) names ``message_type``."""
    return any(f'"message_type":"{message_type}"'.encode() in r.value for r in records)


def events(journal: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in journal if e.get("event") == name]


async def test_a_screened_flight_is_answered_and_its_hits_escalated_and_confirmed(
    backbone: Backbone,
) -> None:
    rig = backbone
    red = Notice(
        notice_id="red-2026-000042", request_id="9b0f3c52-8a47-4f5e-9b1f-24a7c0c1e247",
        colour=NoticeColour.RED, state=NoticeState.PUBLISHED, requester="BEL",
        subject=PersonSubject(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
        facts="Armed robbery, Brussels", published_at=now(),
    )  # fmt: skip
    await rig.send(
        notice_record(
            red,
            ["BEL"],
            hub=rig.identities["hub:lyon"],
            directory=rig.directory,
            topics=rig.settings.topics,
            now=now(),
            random_bytes=os.urandom,
        )
    )
    databases = open_configured(rig.settings)
    rng = random.Random(11)
    document = databases.sltd.sample(rng)
    while document.owner in ("BEL", "FRA"):
        document = databases.sltd.sample(rng)
    databases.close()
    owner = document.owner
    await start(rig)

    flight = CheckRequest(
        correlation_id="flight-AF1234-1",
        asker=TEAM,
        items=(
            PersonItem(family_name="Martin", forenames="Paul", date_of_birth="1980-02-02"),
            TravelDocumentItem(number="Z000000001", issuing_country="FRA"),
            PersonItem(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
            TravelDocumentItem(number=document.number, issuing_country=document.issuing_country),
        ),
    )
    await send_to_ccc(rig, TEAM, flight)

    boxes = await rig.inboxes(["BEL"], until=lambda rs: has_type(rs, "hit-confirmation-request"))
    request = next(m for m in opened(boxes["BEL"]) if isinstance(m.body, HitConfirmationRequest))
    reply = CheckResponder("BEL", silence=0.0).respond(request.body, now(), random.Random(1))
    await send_to_ccc(rig, "BEL", reply)  # the document's owner stays silent

    journal = await rig.journal(
        until=lambda es: bool(events(es, "hit-confirmation-breach")), timeout=90
    )
    owner_inbox = rig.settings.topics.inbox(owner)

    def all_delivered(records: list[Any]) -> bool:  # 4 to the team, 2 to BEL, 4 to the owner
        to_owner = [r for r in records if r.topic == owner_inbox]
        return len(records) >= 10 and len(to_owner) >= 4

    boxes = await rig.inboxes([TEAM, "BEL", owner], until=all_delivered, timeout=20)

    answers = [m for m in opened(boxes[TEAM]) if isinstance(m.body, CheckAnswer)]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.header.correlation_id == "flight-AF1234-1"
    assert isinstance(answer.body, CheckAnswer)
    assert [r.hit for r in answer.body.results] == [False, False, True, True]

    def flash(participant: str) -> set[HeaderFlag]:
        return {
            flag
            for m in opened(boxes[participant])
            if isinstance(m.body, MessageBody) and m.precedence is Precedence.FLASH
            for flag in m.header.flags
        }

    assert flash(TEAM) == {HeaderFlag.WANTED_PERSON_HIT, HeaderFlag.STOLEN_DOCUMENT_HIT}
    assert flash("BEL") == {HeaderFlag.WANTED_PERSON_HIT}
    assert flash(owner) == {HeaderFlag.STOLEN_DOCUMENT_HIT}
    escalated = events(journal, "check-hit-escalated")
    assert sorted((e["flag"], e["owner"]) for e in escalated) == sorted(
        [("wanted-person-hit", "BEL"), ("stolen-document-hit", owner)]
    )
    assert all(e["hub_on_duty"].startswith("hub:") for e in escalated)
    (answered,) = events(journal, "check-answered")
    assert (answered["asker"], answered["items"], answered["hits"]) == (TEAM, 4, 2)

    (confirmed,) = events(journal, "hit-confirmed")
    assert (confirmed["owner"], confirmed["in_time"]) == ("BEL", True)
    assert [e["owner"] for e in events(journal, "hit-confirmation-reminder")] == [owner]
    assert [e["owner"] for e in events(journal, "hit-confirmation-breach")] == [owner]
    kind = b'"message_type":"hit-confirmation-request"'
    again = await rig.inboxes([owner], until=lambda rs: sum(kind in r.value for r in rs) >= 2)
    reminded = [m for m in opened(again[owner]) if isinstance(m.body, HitConfirmationRequest)]
    # the request, then the desk timer's reminder (the request again): both fence-tagged,
    # the reminder under the lease the hub holds, so a lease-checking reader opens both
    assert len(reminded) == 2
    assert reminded[1].body == reminded[0].body


async def test_a_multi_country_query_names_the_target_that_stayed_silent(
    backbone: Backbone,
) -> None:
    rig = backbone
    await start(rig)
    query = MultiCountryQuery(
        query_id="mcq-fra-1",
        asker="FRA",
        targets=("DEU", "ITA", "ESP"),
        question="Is Paul Martin, born 1980-02-02, known to your services?",
        window_seconds=300.0,  # 10 s at 30x
    )
    await send_to_ccc(rig, "FRA", query)
    responders = {"DEU": 0.0, "ITA": 0.0, "ESP": 1.0}  # ESP is always silent
    boxes = await rig.inboxes(list(responders), until=lambda rs: len(rs) >= 3, timeout=60)
    sent = 0
    for code, silence in responders.items():
        for message in opened(boxes[code]):
            reply = CheckResponder(code, silence).respond(message.body, now(), random.Random(2))
            if reply is not None:
                await send_to_ccc(rig, code, reply)
                sent += 1
    assert sent == 2

    boxes = await rig.inboxes(["FRA"], until=lambda rs: has_type(rs, "consolidated-answer"))
    (answer,) = [m for m in opened(boxes["FRA"]) if isinstance(m.body, ConsolidatedAnswer)]
    assert isinstance(answer.body, ConsolidatedAnswer)
    assert sorted(answer.body.answers) == ["DEU", "ITA"]
    assert answer.body.silent == ("ESP",)
    journal = await rig.journal(until=lambda es: bool(events(es, "multi-country-consolidated")))
    assert events(journal, "multi-country-consolidated")[0]["silent"] == ["ESP"]
