"""Response teams end to end: a real hub process on a real broker creates, lands and closes a team.

What this proves, and what it does not: the hub decides the request, answers FRA, writes
the team's keys, creates its inbox and journals its identity; a reader folding the journal
learns the team; traffic to the team is admitted while it works and dead-lettered
``recipient-revoked`` once closed; DVI reports out of order are refused back to the team.
Notices reach the team through the hub's own notices desk, and stolen-vehicle reports
through its vehicle desk: an alert or a vehicle of the team's region is copied to it, one
of another region is not.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from agents.ncb.adapter import NcbAdapter, Opened
from agents.sim.notice_traffic import red_notice_id, regional_alert
from brokers.record_headers import read_dead_letter
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import (
    DeploymentClosedBody,
    MessageBody,
    NoticeBody,
    NoticeRequestBody,
    TeamDecisionBody,
    TeamReportBody,
    TeamRequestBody,
)
from schemas.checks import StolenVehicleReport, StolenVehicleUpdate, VehicleRecord
from schemas.keys import Directory, PrivateIdentity, load_identity
from schemas.registry import Region
from schemas.sealing import parse_envelope
from schemas.teams import Concern, DviPhase, Place, TeamKind, TeamReport, TeamRequest
from streams.desks.team_registry import TeamRegistry
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration


def has(event: str, **fields: Any) -> Callable[[list[dict[str, Any]]], bool]:
    def holds(events: list[dict[str, Any]]) -> bool:
        return any(
            e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            for e in events
        )

    return holds


async def opened_in(
    bb: Backbone, adapter: NcbAdapter, holds: Callable[[list[Opened]], bool]
) -> list[Opened]:
    """Every message in ``adapter``'s inbox it can open, once ``holds`` is true of them."""
    fresh = NcbAdapter(adapter.identity, adapter.directory, adapter.topics)

    def open_all(records: list[ReceivedRecord]) -> list[Opened]:
        items = [fresh.receive(r) for r in records]
        fresh._opened.clear()
        return [i for i in items if isinstance(i, Opened)]

    records = await bb.read([adapter.inbox], until=lambda rs: holds(open_all(rs)), timeout=60)
    return open_all(records)


async def test_a_team_is_approved_works_reports_and_is_revoked_when_closed(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with running(settings, keys_dir, keyring, tmp_path, clock_scale=43_200.0) as bb:
        topics = bb.settings.topics
        fra, deu = bb.adapter("FRA"), bb.adapter("DEU")
        start = now()
        request = TeamRequest(
            requester="FRA",
            kind=TeamKind.IRT_DVI,
            place=Place(country="FRA", name=f"Nice {uuid.uuid4().hex[:6]}"),
            starts_at=start,
            ends_at=start + timedelta(days=5),
            incident="ferry capsized off the coast, 300 aboard",
        )
        asked, record = fra.compose(
            ["ccc"], TeamRequestBody(request=request), now=start, random_bytes=os.urandom
        )
        await bb.send(record)

        # the decision reaches FRA, and the journal tells everyone about the team
        journal = await bb.journal(
            until=has("team-dispatched", request_id=asked.message_id), timeout=60
        )
        [decision] = [
            i.body
            for i in await opened_in(
                bb, fra, lambda xs: any(isinstance(i.body, TeamDecisionBody) for i in xs)
            )
            if isinstance(i.body, TeamDecisionBody)
        ]
        assert decision.request_id == asked.message_id
        assert decision.decision.approved
        team = decision.decision.team
        assert team is not None
        inbox = topics.inbox(team)
        admin = AIOKafkaAdminClient(bootstrap_servers=bb.bootstrap)
        await admin.start()
        try:
            assert inbox in await admin.list_topics()  # created by the hub, before any traffic
        finally:
            await admin.close()

        # a reader folds the journal: it learns the team's keys, which match the key file
        registry = TeamRegistry()
        learned = [i for e in journal for i in registry.fold(e)]
        assert [i.participant for i in learned] == [team]
        identity = load_identity(keys_dir, team)  # the hub wrote it, 0600, for the team
        assert identity.public().to_json() == learned[0].to_json()
        directory = bb.directory.with_identities(learned)
        for adapter in (fra, deu):
            adapter.directory = directory
        squad = NcbAdapter(identity, directory, topics)

        # the notices desk copies a notice to the teams in its scope: Europe's alert reaches
        # the team (deployed at Nice), the Americas' does not; both go through review
        assert registry.teams_concerned(Concern(region=Region.AMERICAS), now()) == []
        assert registry.teams_concerned(Concern(region=Region.EUROPE), now()) == [team]
        rng = random.Random(4)
        europe = regional_alert("DEU", str(uuid.uuid4()), Region.EUROPE, rng)
        americas = regional_alert("BRA", str(uuid.uuid4()), Region.AMERICAS, rng)
        for requester, alert in (("BRA", americas), ("DEU", europe)):
            _, record = bb.adapter(requester).compose(
                ["ccc"], NoticeRequestBody(request=alert), now=now(), random_bytes=os.urandom
            )
            await bb.send(record)
        await bb.journal(until=has("notice-broadcast", notice_id=red_notice_id(europe)), timeout=60)
        await bb.journal(
            until=has("notice-broadcast", notice_id=red_notice_id(americas)), timeout=60
        )

        # stolen-vehicle reports: one registered in the team's host country reaches it in
        # real time, one from the Americas does not
        for reporter in ("BRA", "FRA"):
            car = VehicleRecord(
                vin="1M8GDM9AXKP042788", plate=f"{reporter}-42", registration_country=reporter,
                make="Renault", model="Clio", colour="grey", reported_on="2026-06-30",
                reporting_ncb=reporter,
            )  # fmt: skip
            _, record = bb.adapter(reporter).compose(
                ["ccc"], StolenVehicleReport(record=car, reported_at=now()), now=now(),
                random_bytes=os.urandom,
            )  # fmt: skip
            await bb.send(record)
        await bb.journal(until=has("vehicle-circulated", reporter="FRA", teams=[team]), timeout=60)
        await bb.journal(until=has("vehicle-circulated", reporter="BRA", teams=[]), timeout=60)

        # intake admits traffic for the new team while it works
        hello, record = deu.compose(
            [team], MessageBody(subject="liaison", text="our DVI unit is on its way"),
            now=now(), random_bytes=os.urandom,
        )  # fmt: skip
        await bb.send(record)

        # once landed (1-2 s at this scale) the team reports; phase 2 before 1 is refused
        await bb.journal(until=has("team-arrived", team=team), timeout=60)
        for phase, complete in ((DviPhase.POST_MORTEM, False), (DviPhase.SCENE_EXAMINATION, True)):
            report = TeamReport(team=team, phase=phase, phase_complete=complete, text="field")
            _, record = squad.compose(
                ["ccc"], TeamReportBody(report=report), now=now(), random_bytes=os.urandom
            )
            await bb.send(record)
        await bb.journal(until=has("team-phase-completed", team=team), timeout=60)

        # the host closes the deployment; both the host and the team are told
        closing = DeploymentClosedBody(team=team, closed_at=now(), reason="identification done")
        _, record = fra.compose(["ccc"], closing, now=now(), random_bytes=os.urandom)
        await bb.send(record)
        journal = await bb.journal(until=has("team-closed", team=team), timeout=60)

        received = await opened_in(
            bb, squad, lambda xs: any(isinstance(i.body, DeploymentClosedBody) for i in xs)
        )
        bodies = [i.body for i in received]
        notices = {b.notice.notice_id for b in bodies if isinstance(b, NoticeBody)}
        assert notices == {red_notice_id(europe)}  # in scope, opened; the other never sent
        cars = [b.record.registration_country for b in bodies if isinstance(b, StolenVehicleUpdate)]
        assert cars == ["FRA"]
        assert hello.message_id in {i.header.message_id for i in received}
        [refusal] = [b for b in bodies if isinstance(b, MessageBody) and "refused" in b.subject]
        assert "scene-examination" in refusal.text
        assert any(isinstance(b, DeploymentClosedBody) for b in bodies)
        assert has("team-report", team=team, phase="scene-examination")(journal)
        assert has("team-refused", sender=team)(journal)

        # after the close, traffic sealed for the team is dead-lettered
        late, record = deu.compose(
            [team], MessageBody(subject="liaison", text="are you still there?"),
            now=now(), random_bytes=os.urandom,
        )  # fmt: skip
        await bb.send(record)

        def refused(records: list[ReceivedRecord]) -> bool:
            return any(
                parse_envelope(r.value, max_bytes=1 << 20).header.message_id == late.message_id
                for r in records
            )

        dead = await bb.read([topics.deadletter], until=refused, timeout=60)
        [letter] = [
            r
            for r in dead
            if parse_envelope(r.value, max_bytes=1 << 20).header.message_id == late.message_id
        ]
        info = read_dead_letter(letter.headers)
        assert info.reason == "recipient-revoked"
        assert "FRA" in info.detail

        # a restarted hub rebuilds the teams from the journal: it still knows the team's
        # keys (its report is verified and answered) and still refuses traffic for it
        bb.stop_hub()
        bb.start_hub()
        await bb.journal(
            until=lambda es: sum(e.get("event") == "hub-ready" for e in es) >= 2, timeout=90
        )
        after, record = deu.compose(
            [team], MessageBody(subject="liaison", text="anyone?"),
            now=now(), random_bytes=os.urandom,
        )  # fmt: skip
        await bb.send(record)
        report = TeamReport(team=team, phase=DviPhase.POST_MORTEM, text="late")
        sent, record = squad.compose(
            ["ccc"], TeamReportBody(report=report), now=now(), random_bytes=os.urandom
        )
        await bb.send(record)
        journal = await bb.journal(
            until=has("team-refused", message_id=sent.message_id), timeout=60
        )
        [late_report] = [e for e in journal if e.get("message_id") == sent.message_id]
        assert "closed" in late_report["reason"]

        def refused_after(records: list[ReceivedRecord]) -> bool:
            return any(
                parse_envelope(r.value, max_bytes=1 << 20).header.message_id == after.message_id
                for r in records
            )

        dead = await bb.read([topics.deadletter], until=refused_after, timeout=60)
        [letter] = [
            r
            for r in dead
            if parse_envelope(r.value, max_bytes=1 << 20).header.message_id == after.message_id
        ]
        assert read_dead_letter(letter.headers).reason == "recipient-revoked"
