"""Receipt batches: the model, sign/verify, the hub's ``receipt_records`` and their headers."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.contract import asyncapi_document
from brokers.record_headers import (
    RECEIPTS_CONTENT_TYPE,
    RECEIPTS_TYPE,
    envelope_message_type,
    is_receipt_batch,
    read_cloudevent,
)
from schemas.errors import (
    BadSignature,
    MalformedMessage,
    OversizedMessage,
    RejectedMessage,
    RejectReason,
    UnknownParticipant,
)
from schemas.header import Precedence
from schemas.keys import Directory, generate_identity
from schemas.leases import FenceTag, fence_headers
from schemas.receipts import (
    MAX_RECEIPTS,
    Receipt,
    ReceiptBatch,
    batch_id_for,
    listed_receipts,
    receipt_id_for,
    receipts_signed_bytes,
    sign_receipts,
    verify_receipts,
)
from schemas.topics import TopicCatalog
from streams.core.delivery import ReceiptOrder, receipt_records
from tests.unit.factories import T0, make_header, small_keyring

TOPICS = TopicCatalog("i247")
FRA_INBOX = TOPICS.inbox("FRA")
MAX = 1 << 20


def receipt(recipient: str = "DEU", message_id: str | None = None) -> Receipt:
    delivered = message_id or str(uuid.uuid4())
    return Receipt(
        receipt_id=receipt_id_for(delivered, recipient),
        delivered=delivered,
        recipient=recipient,
        precedence=Precedence.PRIORITY,
        delivered_at=T0,
        trace_id=uuid.uuid4().hex,
    )


def signed(items: list[Receipt] | None = None, hub: str = "hub:lyon") -> ReceiptBatch:
    _, ids = small_keyring()
    return sign_receipts(
        items or [receipt("DEU"), receipt("ccc")],
        hub=ids[hub],
        sender="FRA",
        topic=FRA_INBOX,
        issued_at=T0,
    )


def check(raw: bytes, *, topic: str = FRA_INBOX, key: bytes | None = None) -> ReceiptBatch:
    directory, _ = small_keyring()
    if key is None:
        key = json.loads(raw)["batch_id"].encode()
    return verify_receipts(raw, topic=topic, key=key, directory=directory, max_bytes=MAX)


def resigned(document: dict[str, Any], signer: str = "hub:lyon") -> bytes:
    """``document`` signed again by ``signer`` over its own bytes: only parsing can refuse."""
    _, ids = small_keyring()
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    key = str(document.get("batch_id", "")).encode()
    value = ids[signer].signing_key.sign(receipts_signed_bytes(FRA_INBOX, key, unsigned))
    document["signature"] = {
        "kid": ids[signer].signing_kid,
        "value": base64.b64encode(value).decode(),
    }
    return json.dumps(document).encode()


SAMPLE_BATCH = signed()
SAMPLE, SAMPLE_KEY = SAMPLE_BATCH.to_bytes(), SAMPLE_BATCH.batch_id.encode()


def test_a_signed_batch_verifies_and_reads_back_the_same() -> None:
    batch = signed()
    assert check(batch.to_bytes()) == batch
    assert batch.hub == "hub:lyon"
    assert batch.sender == "FRA"
    assert batch.batch_id == batch_id_for([r.receipt_id for r in batch.items])
    assert json.loads(batch.to_bytes())["items"][0]["delivered_at"] == "2026-11-23T12:00:00.000000Z"


def test_ids_are_derived_so_a_redelivered_receipt_is_recognised() -> None:
    message_id = str(uuid.uuid4())
    assert receipt_id_for(message_id, "DEU") == receipt_id_for(message_id, "DEU")
    assert receipt_id_for(message_id, "DEU") != receipt_id_for(message_id, "ITA")
    items = [receipt("DEU", message_id), receipt("ITA", message_id)]
    assert signed(items).batch_id == signed(list(items)).batch_id
    assert uuid.UUID(receipt_id_for(message_id, "DEU")).version == 5


@given(position=st.integers(min_value=0), replacement=st.integers(min_value=0, max_value=255))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_single_byte_change_to_a_signed_batch_is_refused(
    position: int, replacement: int
) -> None:
    raw = bytearray(SAMPLE)
    position %= len(raw)
    if raw[position] == replacement:
        replacement ^= 0x01
    raw[position] = replacement
    with pytest.raises(RejectedMessage):
        check(bytes(raw), key=SAMPLE_KEY)


@given(topic=st.text(min_size=1, max_size=40), key=st.binary(max_size=40))
@settings(max_examples=100, deadline=None)
def test_a_batch_read_under_another_topic_or_key_is_refused(topic: str, key: bytes) -> None:
    if (topic, key) == (FRA_INBOX, SAMPLE_KEY):
        return
    with pytest.raises(BadSignature):
        check(SAMPLE, topic=topic, key=key)


def test_a_batch_for_another_inbox_does_not_verify_there() -> None:
    with pytest.raises(BadSignature, match="another topic or key"):
        check(SAMPLE, topic=TOPICS.inbox("DEU"))


def test_a_batch_signed_by_an_ncb_or_another_hub_is_a_bad_signature() -> None:
    document = json.loads(SAMPLE)
    with pytest.raises(BadSignature, match="belongs to DEU"):
        check(resigned(document, signer="DEU"))
    with pytest.raises(BadSignature, match="belongs to hub:singapore"):
        check(resigned(json.loads(SAMPLE), signer="hub:singapore"))


def test_a_hub_missing_from_the_directory_is_an_unknown_sender() -> None:
    directory, _ = small_keyring()
    stranger = Directory({p: i for p, i in directory.identities.items() if p != "hub:lyon"})
    with pytest.raises(UnknownParticipant) as refused:
        verify_receipts(SAMPLE, topic=FRA_INBOX, key=SAMPLE_KEY, directory=stranger, max_bytes=MAX)
    assert refused.value.reason is RejectReason.UNKNOWN_SENDER


def test_a_rotated_hub_key_still_verifies_batches_it_signed_and_the_new_one_too() -> None:
    directory, ids = small_keyring()
    new = generate_identity("hub:lyon")
    public = directory.get("hub:lyon")
    both = type(public)("hub:lyon", {**public.signing, **new.public().signing}, public.kem)
    rotated = directory.with_identities([both])
    for hub in (ids["hub:lyon"], new):
        batch = sign_receipts([receipt()], hub=hub, sender="FRA", topic=FRA_INBOX, issued_at=T0)
        key = batch.batch_id.encode()
        got = verify_receipts(
            batch.to_bytes(), topic=FRA_INBOX, key=key, directory=rotated, max_bytes=MAX
        )
        assert got.signature.kid == hub.signing_kid


def _set(path: str, value: object) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for name in parents:
            target = target[int(name)] if name.isdigit() else target[name]
        target[last] = value

    return change


SIGNED_BUT_MALFORMED = [
    ("format 2", _set("receipts", 2)),
    ("format true", _set("receipts", True)),
    ("extra field", _set("note", "x")),
    ("an NCB as the hub", _set("hub", "FRA")),
    ("a hub as the sender", _set("sender", "hub:lyon")),
    ("issued_at with an offset", _set("issued_at", "2026-11-23T12:00:00.000000+00:00")),
    ("delivered_at without microseconds", _set("items.0.delivered_at", "2026-11-23T12:00:00Z")),
    ("receipt id not derived", _set("items.0.receipt_id", str(uuid.uuid4()))),
    ("recipient not an NCB, team or ccc", _set("items.0.recipient", "hub:lyon")),
    ("unknown precedence", _set("items.0.precedence", "URGENT")),
    ("no items", _set("items", [])),
    ("receipt repeated", lambda d: d["items"].append(d["items"][0])),
]


@pytest.mark.parametrize(
    ("name", "change"), SIGNED_BUT_MALFORMED, ids=[c[0] for c in SIGNED_BUT_MALFORMED]
)
def test_a_signed_batch_that_breaks_the_format_is_malformed(name: str, change: Any) -> None:
    document = json.loads(SAMPLE)
    change(document)
    with pytest.raises(MalformedMessage):
        check(resigned(document), key=SAMPLE_KEY)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"not json", SAMPLE.replace(b'{"receipts":1,', b'{"receipts":1,"receipts":1,')],
    ids=["empty", "array", "not JSON", "repeated key"],
)
def test_bytes_that_are_not_a_batch_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        check(raw, key=SAMPLE_KEY)


def test_the_size_limit_comes_first() -> None:
    directory, _ = small_keyring()
    with pytest.raises(OversizedMessage):
        verify_receipts(
            SAMPLE, topic=FRA_INBOX, key=SAMPLE_KEY, directory=directory, max_bytes=len(SAMPLE) - 1
        )


def test_listed_receipts_counts_without_trusting() -> None:
    assert listed_receipts(SAMPLE) == 2
    assert listed_receipts(b"garbage") == 1
    assert listed_receipts(b'{"items": 3}') == 1


# --- the hub side: receipt_records ----------------------------------------------------


def orders(sender: str, recipients: tuple[str, ...]) -> list[ReceiptOrder]:
    header = make_header(sender=sender, recipients=list(recipients))
    return [ReceiptOrder(header, r, Precedence.IMMEDIATE) for r in recipients]


def test_receipt_records_make_one_signed_record_per_sender() -> None:
    directory, ids = small_keyring()
    given_orders = [
        *orders("FRA", ("DEU", "ccc")),
        *orders("ITA", ("ESP",)),
        *orders("FRA", ("ITA",)),
    ]
    records = receipt_records(given_orders, hub=ids["hub:singapore"], topics=TOPICS, now=T0)
    assert [r.topic for r in records] == [FRA_INBOX, TOPICS.inbox("ITA")]
    fra = verify_receipts(
        records[0].value,
        topic=FRA_INBOX,
        key=records[0].key or b"",
        directory=directory,
        max_bytes=MAX,
    )
    assert [(r.recipient, r.precedence) for r in fra.items] == [
        ("DEU", Precedence.IMMEDIATE),
        ("ccc", Precedence.IMMEDIATE),
        ("ITA", Precedence.IMMEDIATE),
    ]
    assert fra.items[0].trace_id == given_orders[0].header.trace_id
    assert records[0].key == fra.batch_id.encode()
    event = read_cloudevent(records[0].headers)
    assert (event.type, event.source, event.id) == (
        RECEIPTS_TYPE,
        "/i247/hub:singapore",
        fra.batch_id,
    )
    assert event.datacontenttype == RECEIPTS_CONTENT_TYPE
    assert event.time == T0
    assert records[0].header("i247-hub") == b"hub:singapore"
    assert is_receipt_batch(records[0].headers)
    assert envelope_message_type(records[0].headers) is None


def test_receipt_records_are_deterministic_and_list_a_delivery_once() -> None:
    _, ids = small_keyring()
    twice = orders("FRA", ("ccc",)) * 2
    [first] = receipt_records(twice, hub=ids["hub:lyon"], topics=TOPICS, now=T0)
    [again] = receipt_records(twice[:1], hub=ids["hub:lyon"], topics=TOPICS, now=T0)
    assert first == again
    assert len(json.loads(first.value)["items"]) == 1
    assert receipt_records([], hub=ids["hub:lyon"], topics=TOPICS, now=T0) == []


def test_more_receipts_than_a_batch_holds_are_split() -> None:
    _, ids = small_keyring()
    header = make_header(sender="FRA")
    many = [
        ReceiptOrder(
            header.model_copy(update={"message_id": str(uuid.uuid4())}), "DEU", Precedence.ROUTINE
        )
        for _ in range(MAX_RECEIPTS + 1)
    ]
    later = T0 + timedelta(seconds=1)
    records = receipt_records(many, hub=ids["hub:lyon"], topics=TOPICS, now=later)
    assert [len(json.loads(r.value)["items"]) for r in records] == [MAX_RECEIPTS, 1]
    assert all(check(r.value, key=r.key).issued_at == later for r in records)


def test_the_headers_a_batch_carries_are_the_published_contracts() -> None:
    _, ids = small_keyring()
    [record] = receipt_records(orders("FRA", ("DEU",)), hub=ids["hub:lyon"], topics=TOPICS, now=T0)
    headers = fence_headers(record.headers, FenceTag("i247.hub.lyon.routine", 2, 0, 7))
    document = asyncapi_document()
    components = document["components"]
    message = components["messages"]["receipts"]
    schema = components["schemas"][message["headers"]["$ref"].rsplit("/", 1)[1]]
    assert sorted(schema["required"]) == sorted(name for name, _ in headers)
    for name, value in headers:
        rule = schema["properties"][name]
        text = value.decode()
        assert text == rule.get("const", text), name
        assert re.fullmatch(rule.get("pattern", ".*"), text), name
    assert message["contentType"] == RECEIPTS_CONTENT_TYPE
    for inbox in ("ncb-inbox", "team-inbox"):
        assert "receipts" in document["channels"][inbox]["messages"]
    payload = components["schemas"]["ReceiptBatch"]
    assert sorted(payload["required"]) == sorted(json.loads(record.value))
