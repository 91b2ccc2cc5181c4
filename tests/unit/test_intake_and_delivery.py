"""admit and plan_delivery: the CCC's per-record decisions, with no broker."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from agents.ncb.adapter import NcbAdapter, Receipted
from agents.sim.accounting import Accounting
from agents.sim.faults import key_as_another
from agents.sim.simulator import Simulator
from agents.sim.traffic import EXPECTED_REASON, Fault, Planned, TrafficMix
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import AcknowledgementBody, MessageBody, UrgentRequestBody
from schemas.errors import RejectReason
from schemas.header import HeaderFlag, Language, Precedence
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages
from streams.core.delivery import (
    DeliveryLedger,
    ledger_horizon,
    plan_delivery,
    receipt_id_for,
    receipt_records,
)
from streams.core.intake import Admitted, IntakePolicy, Redelivered, Refused, admit
from streams.core.roster import DutyRoster
from tests.unit.factories import T0, small_keyring

TOPICS = TopicCatalog("i247")
BODY = MessageBody(subject="Cash courier intercepted", text="EUR 400,000 in false-bottom case")


def adapter(code: str) -> NcbAdapter:
    directory, ids = small_keyring()
    return NcbAdapter(ids[code], directory, TOPICS)


def as_received(record: OutboundRecord, offset: int = 0) -> ReceivedRecord:
    return ReceivedRecord(record.topic, 0, offset, 0, record.key, record.value, record.headers)


def run_admit(
    record: ReceivedRecord, seen: SeenMessages | None = None, now: datetime = T0
) -> object:
    directory, _ = small_keyring()
    return admit(
        record,
        now=now,
        directory=directory,
        seen=SeenMessages() if seen is None else seen,
        roster=DutyRoster(),
        topics=TOPICS,
        policy=IntakePolicy(),
    )


def compose(
    code: str = "FRA", recipients: tuple[str, ...] = ("DEU",), **kw: object
) -> OutboundRecord:
    return adapter(code).compose(list(recipients), BODY, now=T0, random_bytes=os.urandom, **kw)[1]  # type: ignore[arg-type]


def test_a_good_message_goes_to_the_lane_of_the_hub_on_duty() -> None:
    outcome = run_admit(as_received(compose()))
    assert isinstance(outcome, Admitted)
    assert outcome.site == "lyon"  # 12:00 UTC
    assert outcome.lane.topic == "i247.hub.lyon.routine"
    assert outcome.lane.header("i247-origin") == b"i247.inbound/0/0"


def test_flash_traffic_takes_the_flash_lane() -> None:
    urgent = UrgentRequestBody(subject="Hostages", situation="hostage situation", text="Now")
    record = adapter("FRA").compose(
        ["ccc"],
        urgent,
        now=T0,
        random_bytes=os.urandom,
        precedence=Precedence.FLASH,
        flags=[HeaderFlag.THREAT_TO_LIFE],
    )[1]
    outcome = run_admit(as_received(record))
    assert isinstance(outcome, Admitted)
    assert outcome.lane.topic == "i247.hub.lyon.flash"


def test_a_record_without_key_is_malformed() -> None:
    record = compose()
    outcome = run_admit(ReceivedRecord(record.topic, 0, 0, 0, None, record.value))
    assert isinstance(outcome, Refused)
    assert outcome.reason is RejectReason.MALFORMED


def _sealed_under(key: bytes, record_key: bytes) -> ReceivedRecord:
    """FRA's message sealed for ``key``, published under ``record_key``."""
    directory, ids = small_keyring()
    a = adapter("FRA")
    header, record = a.compose(["DEU"], BODY, now=T0, random_bytes=os.urandom)
    if key != b"FRA":
        record = key_as_another(
            record, header, BODY, sender=ids["FRA"], directory=directory, key=key
        )
    return as_received(dataclasses.replace(record, key=record_key))


@pytest.mark.parametrize(
    ("sealed_for", "keyed", "reason", "detail"),
    [
        # FRA seals for DEU's key and publishes under it: signed, but not its own key
        (b"DEU", b"DEU", RejectReason.KEY_NOT_SENDER, "record key 'DEU' is not the sender 'FRA'"),
        (b"fra", b"fra", RejectReason.KEY_NOT_SENDER, "keyed and sealed with the sender's own id"),
        (b"\xff", b"\xff", RejectReason.KEY_NOT_SENDER, "record key '\ufffd'"),
        # re-keyed after sealing (in transit, by anyone): the signed key differs
        (b"FRA", b"DEU", RejectReason.TAMPERED, "routing header, topic or key"),
        (b"DEU", b"FRA", RejectReason.TAMPERED, "routing header, topic or key"),
        (b"FRA", b"FRA", None, None),
    ],
)
def test_intake_refuses_a_record_not_keyed_by_its_sender(
    sealed_for: bytes, keyed: bytes, reason: RejectReason | None, detail: str | None
) -> None:
    outcome = run_admit(_sealed_under(sealed_for, keyed))
    if reason is None:
        assert isinstance(outcome, Admitted)
        assert outcome.header.sender == "FRA"
        return
    assert isinstance(outcome, Refused)
    assert outcome.reason is reason
    assert detail is not None
    assert detail in outcome.detail
    assert outcome.message_id is not None


def _simulator() -> Simulator:
    directory, ids = small_keyring()
    return Simulator(
        topics=TOPICS,
        directory=directory,
        identities=ids,
        mix=TrafficMix({"europe": ["DEU", "ESP", "FRA", "ITA"]}, {}, seed=1),
        producer=cast(AIOKafkaProducer, None),  # build() never sends
        books=Accounting(),
        max_bytes=IntakePolicy().max_bytes,
        freshness=IntakePolicy().freshness,
        clock=lambda: T0,
    )


@pytest.mark.parametrize("fault", list(Fault))
def test_every_spoiled_record_the_demo_sends_earns_its_expected_reason(fault: Fault) -> None:
    simulator, seen = _simulator(), SeenMessages()
    plan = Planned("FRA", ("DEU",), BODY, Precedence.ROUTINE, Language.EN)
    _, good = simulator.build(plan)
    assert isinstance(run_admit(as_received(good, 0), seen), Admitted)
    _, spoiled = simulator.build(dataclasses.replace(plan, fault=fault))
    outcome = run_admit(as_received(spoiled, 1), seen)
    assert isinstance(outcome, Refused)
    assert outcome.reason is EXPECTED_REASON[fault]


@pytest.mark.parametrize(
    ("age", "reason"),
    [(timedelta(seconds=301), RejectReason.STALE), (timedelta(seconds=-61), RejectReason.STALE)],
)
def test_messages_outside_the_freshness_window_are_stale(
    age: timedelta, reason: RejectReason
) -> None:
    outcome = run_admit(as_received(compose()), now=T0 + age)
    assert isinstance(outcome, Refused)
    assert outcome.reason is reason


def test_reprocessing_the_same_offset_is_a_silent_redelivery_and_another_offset_a_replay() -> None:
    seen = SeenMessages()
    record = compose()
    assert isinstance(run_admit(as_received(record, 5), seen), Admitted)
    assert isinstance(run_admit(as_received(record, 5), seen), Redelivered)
    replay = run_admit(as_received(record, 9), seen)
    assert isinstance(replay, Refused)
    assert replay.reason is RejectReason.REPLAYED


def test_a_hub_cannot_be_addressed_directly() -> None:
    with pytest.raises(ValidationError, match="address the CCC as 'ccc'"):
        compose(recipients=("hub:lyon",))


def lane_record(outbound: OutboundRecord) -> ReceivedRecord:
    outcome = run_admit(as_received(outbound))
    assert isinstance(outcome, Admitted)
    return as_received(outcome.lane)


def test_delivery_plans_one_inbox_record_and_receipt_per_recipient() -> None:
    plan = plan_delivery(
        lane_record(compose(recipients=("DEU", "ITA", "ccc"))),
        hub="hub:lyon",
        topics=TOPICS,
        ledger=DeliveryLedger(),
        max_bytes=1 << 20,
    )
    assert [r.topic for r in plan.inbox] == ["i247.ncb.DEU.inbox", "i247.ncb.ITA.inbox"]
    assert [r.recipient for r in plan.receipts] == ["DEU", "ITA", "ccc"]
    assert plan.to_ccc
    assert plan.clocked_recipients == ("DEU", "ITA")


def test_a_lane_record_read_again_is_delivered_again() -> None:
    """Read twice only when its outputs were not acknowledged: skipping it would lose it."""
    ledger = DeliveryLedger()
    record = lane_record(compose())
    first = plan_delivery(record, hub="hub:lyon", topics=TOPICS, ledger=ledger, max_bytes=1 << 20)
    again = plan_delivery(record, hub="hub:lyon", topics=TOPICS, ledger=ledger, max_bytes=1 << 20)
    assert [r.topic for r in again.inbox] == [r.topic for r in first.inbox]
    assert again.duplicates == ()


def test_the_same_message_on_another_lane_record_is_a_duplicate() -> None:
    ledger = DeliveryLedger()
    record = lane_record(compose())
    readmitted = dataclasses.replace(record, offset=record.offset + 7)
    plan_delivery(record, hub="hub:lyon", topics=TOPICS, ledger=ledger, max_bytes=1 << 20)
    again = plan_delivery(
        readmitted, hub="hub:lyon", topics=TOPICS, ledger=ledger, max_bytes=1 << 20
    )
    assert again.inbox == ()
    assert again.duplicates == ("DEU",)
    assert again.receipts == ()


def test_the_first_lane_record_of_a_delivery_stays_its_origin() -> None:
    ledger = DeliveryLedger()
    ledger.record("m-1", "DEU", ("lane", 0, 3), T0)
    ledger.record("m-1", "DEU", ("lane", 0, 9), T0)
    assert not ledger.duplicate("m-1", "DEU", ("lane", 0, 3))
    assert ledger.duplicate("m-1", "DEU", ("lane", 0, 9))
    assert ledger.duplicate("m-1", "DEU", ("other-lane", 0, 3))
    assert ledger.duplicate("m-1", "DEU", ("lane", 1, 3))
    assert not ledger.duplicate("m-1", "ITA", ("lane", 0, 9))


HORIZON = timedelta(seconds=420)


def test_the_ledger_remembers_a_pair_while_its_partition_plans_messages_within_the_horizon() -> (
    None
):
    ledger = DeliveryLedger(HORIZON)
    ledger.record("m-0", "DEU", ("lane", 0, 0), T0)
    ledger.record("m-1", "DEU", ("lane", 0, 1), T0 + HORIZON)
    assert ledger.duplicate("m-0", "DEU", ("lane", 0, 99))
    ledger.record("m-2", "DEU", ("lane", 0, 2), T0 + HORIZON + timedelta(seconds=1))
    assert not ledger.duplicate("m-0", "DEU", ("lane", 0, 99))
    assert ledger.duplicate("m-1", "DEU", ("lane", 0, 99))
    assert len(ledger) == 2


def test_a_partition_ahead_of_another_does_not_make_the_ledger_forget_the_lagging_ones_pairs() -> (
    None
):
    ledger = DeliveryLedger(HORIZON)
    ledger.record("m-0", "DEU", ("lane", 0, 0), T0)
    ledger.record("m-1", "DEU", ("lane", 1, 0), T0 + 10 * HORIZON)
    assert ledger.duplicate("m-0", "DEU", ("lane", 0, 99))


def test_a_message_older_than_its_partitions_horizon_is_not_remembered() -> None:
    ledger = DeliveryLedger(HORIZON)
    ledger.record("m-new", "DEU", ("lane", 0, 5), T0 + 2 * HORIZON)
    ledger.record("m-old", "DEU", ("lane", 0, 6), T0)
    assert len(ledger) == 1
    assert not ledger.duplicate("m-old", "DEU", ("lane", 0, 99))


def test_the_ledger_stops_growing_after_one_horizon_of_steady_traffic() -> None:
    ledger = DeliveryLedger(HORIZON)
    sizes = []
    for n in range(3 * 420 * 5):  # five messages a second for three horizons
        at = T0 + timedelta(seconds=n / 5)
        ledger.record(f"m-{n}", "DEU", ("lane", n % 3, n), at)
        sizes.append(len(ledger))
    full = 420 * 5
    assert full - 5 <= max(sizes) <= full + 3
    assert sizes[-1] >= full - 5
    assert max(sizes[full * 2 :]) == max(sizes[full : full * 2 + 1])


def test_ledger_horizon_covers_intakes_window_and_skew() -> None:
    horizon = ledger_horizon(timedelta(seconds=300), timedelta(seconds=60))
    assert horizon > timedelta(seconds=360)
    assert DeliveryLedger(horizon).horizon == horizon.total_seconds()


def test_an_acknowledgement_stops_a_clock_and_earns_no_receipt() -> None:
    deu = adapter("DEU")
    ack = deu.compose(
        ["FRA"],
        AcknowledgementBody(acknowledged="0" * 8 + "-0000-4000-8000-" + "0" * 12),
        now=T0,
        random_bytes=os.urandom,
        correlation_id="m-1",
    )[1]
    plan = plan_delivery(
        lane_record(ack), hub="hub:lyon", topics=TOPICS, ledger=DeliveryLedger(), max_bytes=1 << 20
    )
    assert plan.acknowledge is not None
    assert (plan.acknowledge.message_id, plan.acknowledge.recipient) == ("m-1", "DEU")
    assert plan.receipts == ()


def test_receipts_go_to_the_sender_as_one_signed_batch_with_derived_ids() -> None:
    _, ids = small_keyring()
    plan = plan_delivery(
        lane_record(compose(recipients=("DEU", "ITA", "ccc"))),
        hub="hub:lyon",
        topics=TOPICS,
        ledger=DeliveryLedger(),
        max_bytes=1 << 20,
    )
    [record] = receipt_records(plan.receipts, hub=ids["hub:lyon"], topics=TOPICS, now=T0)
    assert record.topic == "i247.ncb.FRA.inbox"
    got = adapter("FRA").receive(as_received(record))
    assert isinstance(got, Receipted)
    assert got.hub == "hub:lyon"
    assert [(r.delivered, r.recipient) for r in got.receipts] == [
        (plan.header.message_id, code) for code in ("DEU", "ITA", "ccc")
    ]
    assert [r.receipt_id for r in got.receipts] == [
        receipt_id_for(plan.header.message_id, code) for code in ("DEU", "ITA", "ccc")
    ]
    assert {r.delivered_at for r in got.receipts} == {T0}


def test_a_hubs_own_message_is_delivered_and_clocked_but_earns_no_receipt() -> None:
    directory, ids = small_keyring()
    hub = NcbAdapter(ids["hub:lyon"], directory, TOPICS)
    _, record = hub.compose(["DEU"], BODY, now=T0, random_bytes=os.urandom)
    received = ReceivedRecord(
        "i247.hub.lyon.routine", 0, 0, 0, record.key, record.value, record.headers
    )
    plan = plan_delivery(
        received, hub="hub:lyon", topics=TOPICS, ledger=DeliveryLedger(), max_bytes=1 << 20
    )
    assert [r.topic for r in plan.inbox] == ["i247.ncb.DEU.inbox"]
    assert plan.receipts == ()
    assert plan.clocked_recipients == ("DEU",)
