"""Readers of receipt batches: the NCB adapter (verified, fenced, deduplicated), the
simulator's books (one per receipt) and the operators' replay."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import cast

from aiokafka import AIOKafkaProducer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from agents.ncb.adapter import Fenced, NcbAdapter, Receipted, Unopened
from agents.ops.replay import TableOutput, replay
from agents.ops.replay_filter import ReplayFilter
from agents.sim.accounting import Accepted, Accounting
from agents.sim.simulator import Simulator
from agents.sim.traffic import TrafficMix
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.header import Language, Precedence
from schemas.leases import Claim, FenceTag, LeaseBook, fence_headers
from schemas.topics import TopicCatalog
from streams.core.delivery import ReceiptOrder, receipt_records
from tests.unit.factories import T0, make_header, small_keyring

TOPICS = TopicCatalog("i247")


def fra() -> NcbAdapter:
    directory, ids = small_keyring()
    return NcbAdapter(ids["FRA"], directory, TOPICS)


def batch(*recipients: str, sender: str = "FRA", message_id: str | None = None) -> OutboundRecord:
    _, ids = small_keyring()
    header = make_header(sender=sender, recipients=list(recipients))
    if message_id:
        header = header.model_copy(update={"message_id": message_id})
    orders = [ReceiptOrder(header, r, Precedence.ROUTINE) for r in recipients]
    [record] = receipt_records(orders, hub=ids["hub:lyon"], topics=TOPICS, now=T0)
    return record


def received(record: OutboundRecord, topic: str | None = None) -> ReceivedRecord:
    return ReceivedRecord(topic or record.topic, 0, 0, 0, record.key, record.value, record.headers)


def test_a_batch_is_verified_and_its_receipts_returned() -> None:
    record = batch("DEU", "ccc")
    got = fra().receive(received(record))
    assert isinstance(got, Receipted)
    assert got.hub == "hub:lyon"
    assert [r.recipient for r in got.receipts] == ["DEU", "ccc"]
    assert got.duplicates == ()


def test_a_receipt_seen_before_is_a_duplicate_in_this_batch_or_another() -> None:
    adapter = fra()
    first = batch("DEU", "ITA")
    message_id = json.loads(first.value)["items"][0]["delivered"]
    adapter.receive(received(first))
    again = adapter.receive(received(first))
    assert isinstance(again, Receipted)
    assert again.receipts == ()
    assert len(again.duplicates) == 2
    overlap = adapter.receive(received(batch("DEU", "ESP", message_id=message_id)))
    assert isinstance(overlap, Receipted)
    assert [r.recipient for r in overlap.receipts] == ["ESP"]
    assert len(overlap.duplicates) == 1


def test_a_tampered_batch_is_unopened_with_its_reason_and_its_receipts_stay_unseen() -> None:
    adapter = fra()
    record = batch("DEU")
    spoiled = record.value.replace(b'"precedence":"ROUTINE"', b'"precedence":"FLASH"')
    got = adapter.receive(
        received(OutboundRecord(record.topic, record.key, spoiled, record.headers))
    )
    assert isinstance(got, Unopened)
    assert got.reason == "bad-signature"
    garbage = adapter.receive(
        received(OutboundRecord(record.topic, record.key, b"\xff", record.headers))
    )
    assert isinstance(garbage, Unopened)
    assert garbage.reason == "malformed"
    assert isinstance(adapter.receive(received(record)), Receipted)


def test_a_batch_for_another_ncb_is_refused_wherever_it_is_read() -> None:
    record = batch("ITA", sender="DEU")
    moved = fra().receive(received(record, topic=TOPICS.inbox("FRA")))
    assert isinstance(moved, Unopened)
    assert moved.reason == "bad-signature"  # it was signed for DEU's inbox


def test_a_fenced_batch_counts_each_receipt_it_lists_and_is_not_verified() -> None:
    leases = LeaseBook.empty().apply(Claim("lane:routine", "lyon", 1, T0, timedelta(seconds=3)))
    tag = FenceTag("lane:routine", 0, 0, 5)  # epoch 0 never was a term: fenced
    record = batch("DEU", "ITA", "ESP")
    tagged = OutboundRecord(
        record.topic, record.key, record.value, fence_headers(record.headers, tag)
    )
    got = fra().receive(received(tagged), leases=leases)
    assert isinstance(got, Fenced)
    assert got.deliveries == 3


def test_the_simulator_counts_one_receipt_per_delivery_and_the_ccc_as_delivered() -> None:
    directory, ids = small_keyring()
    books = Accounting()
    simulator = Simulator(
        topics=TOPICS,
        directory=directory,
        identities=ids,
        mix=TrafficMix({"EU": ["FRA"]}, {"FRA": Language.FR}, seed=1),
        producer=cast(AIOKafkaProducer, None),  # reading an inbox sends nothing
        books=books,
        max_bytes=1 << 20,
        freshness=timedelta(minutes=5),
    )
    record = batch("DEU", "ITA", "ccc")
    message_id = json.loads(record.value)["items"][0]["delivered"]
    books.on_accepted(message_id, Accepted("hub:lyon", Precedence.ROUTINE, ("DEU", "ITA", "ccc")))
    assert simulator.on_inbox_record(received(record)) == []
    assert simulator.on_inbox_record(received(record)) == []
    assert books.receipts == 3
    assert books.duplicates_suppressed["recipient"] == 3
    assert (message_id, "ccc") in books.delivered
    assert (message_id, "DEU") not in books.delivered  # DEU's own opening counts that one


async def test_an_operators_replay_names_a_receipt_batch_for_what_it_is() -> None:
    console_file = io.StringIO()
    await replay(
        [received(batch("DEU", "ITA"))],
        ReplayFilter(),
        TableOutput(Console(file=console_file, width=200)),
    )
    assert "receipt batch: 2 delivery receipt(s)" in console_file.getvalue()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(value=st.binary(max_size=300) | JSONISH.map(lambda v: json.dumps(v).encode()))
@settings(max_examples=200, deadline=None)
def test_whatever_a_receipt_batch_record_holds_the_reader_answers_and_never_crashes(
    value: bytes,
) -> None:
    record = batch("DEU")
    got = fra().receive(received(OutboundRecord(record.topic, record.key, value, record.headers)))
    assert isinstance(got, Unopened)
    assert got.reason == "malformed"
