"""Desk state survives failover: three hub processes on a real broker, the one holding the
desks (intake) SIGKILLed mid-window, its successor carrying on from the journal.

Before the kill the desks open, on the hub holding intake: two handling clocks (FLASH
messages FRA -> DEU and FRA -> ITA), two hit-confirmation exchanges (a check by FRA hits
BEL's Red Notice and another bureau's stolen passport), a multi-country window (FRA asks
DEU, ITA and ESP; DEU replies) and a returned notice request (FRA's Red Notice request
without a judicial basis). Then that hub is killed, and after it: ITA acknowledges, BEL
confirms, ITA replies, ESP and the passport's owner stay silent, FRA completes its request.
The successor must breach DEU's clock at the deadline Lyon set (and not ITA's), record
BEL's confirmation in time and escalate the silent owner, consolidate DEU's and ITA's
answers with ESP silent, and publish the completed request as the returned notice's
next version. Clocks run 20x fast: FLASH and urgent confirmations are due in 30 s.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agents.ncb.adapter import NcbAdapter, Opened
from agents.sim.notice_traffic import red_notice
from brokers.settings import Settings
from schemas.bodies import AcknowledgementBody, NoticeRequestBody, UrgentRequestBody
from schemas.checks import (
    CheckRequest,
    ConsolidatedAnswer,
    HitConfirmation,
    MultiCountryQuery,
    MultiCountryReply,
    PersonItem,
    TravelDocumentItem,
)
from schemas.header import HeaderFlag, Precedence
from schemas.keys import Directory, PrivateIdentity
from schemas.notices import Notice, NoticeColour, NoticeState, PersonSubject
from schemas.participants import HUB_SITES
from streams.databases import open_configured
from streams.desks.nominal_feed import notice_record
from tests.integration.harness import Backbone, now, running

pytestmark = pytest.mark.integration

TTL_MS = 2000
Journal = list[dict[str, Any]]


def events(journal: Journal, name: str, **match: Any) -> Journal:
    return [
        e
        for e in journal
        if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
    ]


@pytest.fixture
async def backbone(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> AsyncIterator[Backbone]:
    """Three hubs with 1% databases, clocks 20x fast, short leases."""
    settings = settings.model_copy(update={"db_scale": 0.01, "clock_scale": 20.0})
    open_configured(settings).close()  # built here once; the hubs open the same files
    async with running(
        settings, keys_dir, keyring, tmp_path, start_hub=False, lease_ttl_ms=TTL_MS
    ) as rig:
        rig.env["I247_DB_SCALE"] = "0.01"
        yield rig


async def send(rig: Backbone, sender: str, recipients: list[str], body: Any, **kw: Any) -> str:
    adapter = NcbAdapter(rig.identities[sender], rig.directory, rig.settings.topics)
    header, record = adapter.compose(recipients, body, now=now(), random_bytes=os.urandom, **kw)
    await rig.send(record)
    return header.message_id


def clocks_opened(journal: Journal, hub: str) -> dict[str, dict[str, Any]]:
    """The clocks ``hub`` opened, by message id (batched per handled batch, or one by one)."""
    found = {e["message_id"]: e for e in events(journal, "clock-opened", hub=hub)}
    for batch in events(journal, "clocks-opened", hub=hub):
        found.update({c["message_id"]: c for c in batch["clocks"]})
    return found


def clocks_stopped(journal: Journal) -> list[dict[str, Any]]:
    """Every acknowledgement journaled, with the hub that delivered it."""
    found = [{**e, "at": e["time"]} for e in events(journal, "clock-stopped")]
    for batch in events(journal, "clocks-stopped"):
        found += [{**stop, "hub": batch["hub"]} for stop in batch["stops"]]
    return found


def reply(query: MultiCountryQuery, responder: str, answer: str) -> MultiCountryReply:
    return MultiCountryReply(
        query_id=query.query_id, responder=responder, answer=answer, replied_at=now()
    )


async def journal_until(rig: Backbone, done: Callable[[Journal], bool], timeout: float) -> Journal:
    journal = await rig.journal(until=done, timeout=timeout)
    assert done(journal), f"the journal never showed it; logs in {rig.log_dir}"
    return journal


async def test_desk_state_opened_before_a_kill_is_carried_on_by_the_successor(
    backbone: Backbone,
) -> None:
    rig = backbone
    red = Notice(
        notice_id="red-2026-000077", request_id=str(uuid.uuid4()),
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
    rng = random.Random(7)
    document = databases.sltd.sample(rng)
    while document.owner in ("BEL", "FRA"):
        document = databases.sltd.sample(rng)
    databases.close()
    silent_owner = document.owner

    for site in HUB_SITES:
        rig.start_hub(site)
    for site in HUB_SITES:
        await rig.wait_ready(site)
    holder = (await rig.lease_book()).lease("intake").owner
    assert holder in HUB_SITES
    killed = f"hub:{holder}"

    # --- the desks open, on the hub holding intake ------------------------------------
    urgent = UrgentRequestBody(subject="Hostages", situation="hostage situation", text="Now")
    flash: dict[str, Any] = {"precedence": Precedence.FLASH, "flags": [HeaderFlag.THREAT_TO_LIFE]}
    to_deu = await send(rig, "FRA", ["DEU"], urgent, **flash)
    to_ita = await send(rig, "FRA", ["ITA"], urgent, **flash)
    check = CheckRequest(
        correlation_id="check-fra-77",
        asker="FRA",
        items=(
            PersonItem(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
            TravelDocumentItem(number=document.number, issuing_country=document.issuing_country),
        ),
    )
    await send(rig, "FRA", ["ccc"], check)
    query = MultiCountryQuery(
        query_id="mcq-fra-77",
        asker="FRA",
        targets=("DEU", "ITA", "ESP"),
        question="Is Jean Dupont, born 1970-01-31, known to your services?",
        window_seconds=600.0,  # 30 s at 20x
    )
    await send(rig, "FRA", ["ccc"], query)
    complete = red_notice("FRA", str(uuid.uuid4()), random.Random(77))
    incomplete = complete.model_copy(update={"judicial_basis": None})
    await send(rig, "FRA", ["ccc"], NoticeRequestBody(request=incomplete))

    def opened_before_kill(journal: Journal) -> bool:
        return (
            {to_deu, to_ita} <= set(clocks_opened(journal, killed))
            and len(events(journal, "hit-confirmation-requested", hub=killed)) == 2
            and bool(events(journal, "multi-country-opened", hub=killed))
            and bool(events(journal, "notice-decided", decision="returned"))
        )

    journal = await journal_until(rig, opened_before_kill, timeout=60)
    await send(rig, "DEU", ["ccc"], reply(query, "DEU", "No record"))
    journal = await journal_until(
        rig,
        lambda j: bool(events(j, "multi-country-reply", responder="DEU", outcome="accepted")),
        timeout=30,
    )
    (returned,) = events(journal, "notice-decided", decision="returned")
    assert (returned["hub"], returned["version"]) == (killed, 3)
    opened_clocks = clocks_opened(journal, killed)
    (bel_request,) = events(journal, "hit-confirmation-requested", owner="BEL")

    # --- SIGKILL, mid-window; the rest happens after -----------------------------------
    rig.kill_hub(holder)
    ack = AcknowledgementBody(acknowledged=to_ita)
    await send(rig, "ITA", ["FRA"], ack, precedence=Precedence.FLASH, correlation_id=to_ita)
    confirmation = HitConfirmation(
        confirmation_id=bel_request["confirmation_id"],
        owner="BEL",
        confirmed=True,
        confirmed_at=now(),
    )
    await send(rig, "BEL", ["ccc"], confirmation)
    await send(rig, "ITA", ["ccc"], reply(query, "ITA", "Known: file 77"))
    await send(rig, "FRA", ["ccc"], NoticeRequestBody(request=complete))

    def missing(journal: Journal) -> list[str]:
        wanted = {
            "clock breached": events(journal, "handling-breach", message_id=to_deu),
            "owner escalated": events(journal, "hit-confirmation-breach", owner=silent_owner),
            "window consolidated": events(
                journal, "multi-country-consolidated", query_id=query.query_id
            ),
            "completion published": events(journal, "notice-decided", decision="published"),
        }
        return [what for what, found in wanted.items() if not found]

    def carried_on(journal: Journal) -> bool:
        return not missing(journal)

    journal = await rig.journal(until=carried_on, timeout=120)
    assert not missing(journal), f"not carried on: {missing(journal)}; logs in {rig.log_dir}"

    # a clock opened on the killed hub breaches on the successor, at the deadline it set
    (breach,) = events(journal, "handling-breach", message_id=to_deu)
    assert breach["hub"] != killed
    assert breach["deadline"] == opened_clocks[to_deu]["deadline"]
    assert (breach["unacknowledged"], breach["precedence"]) == (["DEU"], "FLASH")
    assert breach["time"] >= breach["deadline"]
    (stop,) = [s for s in clocks_stopped(journal) if s["message_id"] == to_ita]
    assert stop["hub"] != killed
    assert not events(journal, "handling-breach", message_id=to_ita)

    # a hit confirmation requested before the kill: confirmed, or escalated, after it
    (confirmed,) = events(journal, "hit-confirmed", owner="BEL")
    assert (confirmed["hub"] != killed, confirmed["in_time"]) == (True, True)
    assert not events(journal, "hit-confirmation-breach", owner="BEL")
    (escalated,) = events(journal, "hit-confirmation-breach", owner=silent_owner)
    assert (escalated["hub"] != killed, escalated["asker"]) == (True, "FRA")

    # a multi-country window opened before the kill is consolidated after it
    (consolidated,) = events(journal, "multi-country-consolidated", query_id=query.query_id)
    assert consolidated["hub"] != killed
    assert (consolidated["answered"], consolidated["silent"]) == (["DEU", "ITA"], ["ESP"])
    boxes = await rig.inboxes(
        ["FRA"], until=lambda rs: any(b'"consolidated-answer"' in r.value for r in rs)
    )
    (answer,) = [
        m.body
        for m in boxes["FRA"]
        if isinstance(m, Opened) and isinstance(m.body, ConsolidatedAnswer)
    ]
    assert isinstance(answer, ConsolidatedAnswer)
    assert answer.answers == {"DEU": "No record", "ITA": "Known: file 77"}
    assert answer.silent == ("ESP",)

    # a returned notice request survives: its completion is the same notice's next version
    (published,) = events(journal, "notice-decided", decision="published")
    assert published["hub"] != killed
    assert published["request_id"] == complete.request_id
    versions = [
        e["version"] for e in events(journal, "notice-transition", notice_id=published["notice_id"])
    ]
    # the killed hub's lane may be redelivered from before the incomplete request, which is
    # then reviewed (and returned) again: the completion follows the latest return
    last_return = events(journal, "notice-decided", decision="returned")[-1]
    assert max(versions) == last_return["version"] + 2 >= 5  # 3 had the return been forgotten
