"""The simulator's inbox side without a broker: opening, the books, and acknowledging later.

A batch of deliveries is opened first and acknowledged after (``defer_acks``): the answers
must be the same acknowledgements, each stamped when sealed, and the books must hold each
opening's latency and the simulator's own share of it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from agents.sim.accounting import Accepted, Accounting
from agents.sim.simulator import Simulator
from agents.sim.traffic import TrafficMix
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import Language, Precedence
from schemas.sealing import parse_envelope
from tests.unit.keyring import small_keyring

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TOPICS = Settings().topics
MAX = 1_048_576


class Clock:
    """Moves 5 ms a reading, so stamps differ and their order shows."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=5)
        return self.now


def simulator(clock: Clock) -> Simulator:
    directory, identities = small_keyring()
    mix = TrafficMix({"EU": ["DEU", "FRA"]}, {"DEU": Language.EN, "FRA": Language.FR}, seed=1)
    return Simulator(
        topics=TOPICS,
        directory=directory,
        identities=identities,
        mix=mix,
        producer=None,  # nothing is sent in these tests
        books=Accounting(),
        max_bytes=MAX,
        freshness=timedelta(seconds=300),
        clock=clock,
    )


def delivered(sim: Simulator, record: OutboundRecord, to: str, produced_ms: int) -> ReceivedRecord:
    """``record`` as the hub delivers it to ``to``'s inbox."""
    headers = (
        *record.headers,
        ("i247-sealed-topic", TOPICS.inbound.encode()),
        ("i247-sealed-key", record.key or b""),
        ("i247-hub", b"hub:lyon"),
    )
    return ReceivedRecord(TOPICS.inbox(to), 0, 0, produced_ms, record.key, record.value, headers)


def test_deferred_acknowledgements_are_the_same_answers_sealed_after_the_openings() -> None:
    clock = Clock()
    sim = simulator(clock)
    sent = [
        sim.adapters["FRA"].compose(
            ["DEU"], MessageBody(subject=f"case {n}", text="x"), now=T0, random_bytes=os.urandom
        )
        for n in range(3)
    ]
    for header, _ in sent:
        sim.books.on_accepted(header.message_id, Accepted("hub:lyon", Precedence.ROUTINE, ("DEU",)))
    fetched = clock()
    produced_ms = int(T0.timestamp() * 1000) + 2
    answers = [
        sim.on_inbox_record(delivered(sim, r, "DEU", produced_ms), None, fetched, defer_acks=True)
        for _, r in sent
    ]
    assert answers == [[], [], []]
    opened_by = clock.now
    acks = sim.acknowledgements()
    assert sim.acknowledgements() == []  # each is sealed once
    assert [a.topic for a in acks] == [TOPICS.inbound] * 3
    for (header, _), ack in zip(sent, acks, strict=True):
        ack_header = parse_envelope(ack.value, max_bytes=MAX).header
        assert ack_header.correlation_id == header.message_id
        assert ack_header.sender == "DEU"
        assert ack_header.recipients == ["FRA"]
        assert ack_header.created_at > opened_by  # stamped when sealed, after every opening
    books = sim.books.summary()["delivered"]
    assert books["total"] == 3
    assert books["latency"]["ROUTINE"]["count"] == 3
    assert books["simulator_lag"]["p50_ms"] == 10.0  # the second of three openings, 5 ms apart
    assert books["reader_lag"]["count"] == 3


def test_without_deferring_the_acknowledgement_is_answered_at_once() -> None:
    sim = simulator(Clock())
    header, record = sim.adapters["FRA"].compose(
        ["DEU"], MessageBody(subject="case", text="x"), now=T0, random_bytes=os.urandom
    )
    answers = sim.on_inbox_record(delivered(sim, record, "DEU", 0))
    assert len(answers) == 1
    assert parse_envelope(answers[0].value, max_bytes=MAX).header.correlation_id == (
        header.message_id
    )
    assert sim.acknowledgements() == []
