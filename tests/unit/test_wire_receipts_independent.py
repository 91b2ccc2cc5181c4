"""Receipt batches (docs/wire-format.md §10) from the document alone, checked against the project.

The first half extends the independent client of ``test_wire_independent`` (its byte-level
helpers: ``lp``, ``b64d``, the §3.1 canonical form, strict JSON; none of them imports
``schemas``) with building, signing and verifying a receipt batch. The second half checks
it against the project's hub (``streams.core.delivery.receipt_records``) and reader
(``agents.ncb.adapter.NcbAdapter``), used as black boxes, in both directions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agents.ncb.adapter import NcbAdapter, Receipted, Unopened
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.header import Precedence
from schemas.topics import TopicCatalog
from streams.core.delivery import ReceiptOrder, receipt_records
from tests.unit.factories import T0, make_header
from tests.unit.test_wire_independent import (
    HEX,
    MAX_BYTES,
    TIME,
    UUID,
    Json,
    Refused,
    Ring,
    _strict_json,
    b64d,
    b64e,
    canonical_header,
    lp,
    make_ring,
    matches,
    need,
)

# ======================= the independent client (§10) ==================================

NAMESPACE = uuid.UUID("6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de")  # §10.2
LABEL = b"I247-RCPT-v1\0"  # §10.3
CE_TYPE = "int.interpol.i247.receipt-batch.v1"  # §10.1
CONTENT_TYPE = "application/vnd.i247.receipts+json; version=1"
BATCH_FIELDS = {"receipts", "batch_id", "hub", "sender", "issued_at", "items", "signature"}
ITEM_FIELDS = {"receipt_id", "delivered", "recipient", "precedence", "delivered_at", "trace_id"}
HUB = re.compile(r"hub:(lyon|buenos-aires|singapore)")  # §5
INBOX_OWNER = re.compile(r"[A-Z]{3}|team:[a-z0-9][a-z0-9-]{1,47}")
RECIPIENT = re.compile(rf"{INBOX_OWNER.pattern}|ccc")
PRECEDENCES = {"FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"}
MAX_ITEMS = 1024


def receipt_id(delivered: str, recipient: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{delivered}/{recipient}"))


def batch_id(receipt_ids: list[str]) -> str:
    return str(uuid.uuid5(NAMESPACE, "batch/" + ",".join(receipt_ids)))


def signed_bytes(topic: str, record_key: bytes, batch: Json) -> bytes:
    unsigned = {k: v for k, v in batch.items() if k != "signature"}
    return LABEL + lp(topic.encode()) + lp(record_key) + lp(canonical_header(unsigned))


def _check_time(value: Any) -> None:
    need(matches(value, TIME))
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise Refused("malformed") from None


def _check_item(item: Any) -> None:
    need(isinstance(item, dict) and set(item) == ITEM_FIELDS)
    need(matches(item["delivered"], UUID) and matches(item["recipient"], RECIPIENT))
    need(item["receipt_id"] == receipt_id(item["delivered"], item["recipient"]))
    need(isinstance(item["precedence"], str) and item["precedence"] in PRECEDENCES)
    _check_time(item["delivered_at"])
    need(matches(item["trace_id"], HEX[32]))


def parse_batch(value: bytes, max_bytes: int = MAX_BYTES) -> Json:
    """§10.4 step 1."""
    need(len(value) <= max_bytes, "oversized")
    batch = _strict_json(value)
    need(isinstance(batch, dict) and set(batch) == BATCH_FIELDS)
    need(type(batch["receipts"]) is int and batch["receipts"] == 1)
    need(matches(batch["batch_id"], UUID) and matches(batch["hub"], HUB))
    need(matches(batch["sender"], INBOX_OWNER))
    _check_time(batch["issued_at"])
    items = batch["items"]
    need(isinstance(items, list) and 1 <= len(items) <= MAX_ITEMS)
    for item in items:
        _check_item(item)
    need(len({item["receipt_id"] for item in items}) == len(items))
    signature = batch["signature"]
    need(isinstance(signature, dict) and set(signature) == {"kid", "value"})
    need(matches(signature["kid"], HEX[16]) and len(b64d(signature["value"])) == 64)
    return cast(Json, batch)


def independent_verify_receipts(
    value: bytes,
    inbox: str,
    record_key: bytes,
    directory_json: Json,
    reader: str,
    *,
    max_bytes: int = MAX_BYTES,
) -> Json:
    """§10.4 steps 1-4 for ``reader``, whose inbox is ``inbox``: the batch, or ``Refused``."""
    batch = parse_batch(value, max_bytes)
    hub = directory_json["participants"].get(batch["hub"])
    need(hub is not None, "unknown-sender")
    publics = {k["kid"]: k["public"] for k in hub["signing"]}
    need(batch["signature"]["kid"] in publics, "bad-signature")
    public = Ed25519PublicKey.from_public_bytes(b64d(publics[batch["signature"]["kid"]]))
    try:
        public.verify(b64d(batch["signature"]["value"]), signed_bytes(inbox, record_key, batch))
    except InvalidSignature:
        raise Refused("bad-signature") from None
    need(batch["sender"] == reader, "unexpected-origin")
    return batch


def independent_sign_receipts(
    items: list[Json], *, hub_private: Json, sender: str, inbox: str, issued_at: str
) -> tuple[bytes, bytes]:
    """§10.2-10.3: the record key and value of a batch of ``items`` signed by the hub."""
    key = batch_id([item["receipt_id"] for item in items])
    batch: Json = {
        "receipts": 1,
        "batch_id": key,
        "hub": hub_private["participant"],
        "sender": sender,
        "issued_at": issued_at,
        "items": items,
    }
    signer = Ed25519PrivateKey.from_private_bytes(b64d(hub_private["signing"]["private"]))
    batch["signature"] = {
        "kid": hub_private["signing"]["kid"],
        "value": b64e(signer.sign(signed_bytes(inbox, key.encode(), batch))),
    }
    return key.encode(), json.dumps(batch, ensure_ascii=False).encode("utf-8")


def doc_item(recipient: str = "DEU", delivered: str | None = None) -> Json:
    delivered = delivered or str(uuid.uuid4())
    return {
        "receipt_id": receipt_id(delivered, recipient),
        "delivered": delivered,
        "recipient": recipient,
        "precedence": "PRIORITY",
        "delivered_at": "2026-11-23T06:03:00.202457Z",
        "trace_id": uuid.uuid4().hex,
    }


# ======================= cross-checks against the project ==============================

PEOPLE = ("FRA", "DEU", "hub:lyon", "hub:singapore", "auditor")
TOPICS = TopicCatalog("i247")
INBOX = TOPICS.inbox("FRA")


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Ring:
    return make_ring(tmp_path_factory.mktemp("receipt-keys"), PEOPLE)


def main_batch(ring: Ring, recipients: tuple[str, ...] = ("DEU", "ccc")) -> OutboundRecord:
    header = make_header(sender="FRA", recipients=list(recipients))
    orders = [ReceiptOrder(header, r, Precedence.PRIORITY) for r in recipients]
    later = T0 + timedelta(microseconds=202457)
    [record] = receipt_records(orders, hub=ring.identity("hub:lyon"), topics=TOPICS, now=later)
    return record


def main_outcome(ring: Ring, value: bytes, key: bytes, topic: str = INBOX) -> str:
    adapter = NcbAdapter(ring.identity("FRA"), ring.directory, TOPICS)
    headers = (("ce_type", CE_TYPE.encode()),)
    got = adapter.receive(ReceivedRecord(topic, 0, 0, 0, key, value, headers))
    if isinstance(got, Unopened):
        return str(got.reason)
    assert isinstance(got, Receipted)
    return "accepted"


def indep_outcome(ring: Ring, value: bytes, key: bytes, topic: str = INBOX) -> str:
    try:
        independent_verify_receipts(value, topic, key, ring.directory_json, "FRA")
    except Refused as refusal:
        return refusal.reason
    return "accepted"


def both(ring: Ring, value: bytes, key: bytes, **kw: Any) -> tuple[str, str]:
    return main_outcome(ring, value, key, **kw), indep_outcome(ring, value, key, **kw)


def test_the_hubs_batch_verifies_independently_with_its_documented_headers(ring: Ring) -> None:
    record = main_batch(ring)
    assert record.topic == INBOX
    batch = independent_verify_receipts(
        record.value, INBOX, record.key or b"", ring.directory_json, "FRA"
    )
    assert record.key == batch["batch_id"].encode()
    assert batch["batch_id"] == batch_id([i["receipt_id"] for i in batch["items"]])
    assert [i["recipient"] for i in batch["items"]] == ["DEU", "ccc"]
    assert batch["items"][0]["delivered_at"] == "2026-11-23T12:00:00.202457Z"
    headers = dict(record.headers)
    assert headers["ce_type"] == CE_TYPE.encode()
    assert headers["content-type"] == CONTENT_TYPE.encode()
    assert headers["ce_id"] == record.key
    assert headers["ce_source"] == b"/i247/hub:lyon"
    assert headers["ce_time"] == batch["issued_at"].encode()
    assert headers["i247-hub"] == b"hub:lyon"
    trace = batch["items"][0]["trace_id"]
    assert re.fullmatch(rf"00-{trace}-[0-9a-f]{{16}}-01", headers["traceparent"].decode())


def test_an_independently_signed_batch_is_read_by_the_project(ring: Ring) -> None:
    items = [doc_item("DEU"), doc_item("ccc"), doc_item("team:dvi-lyon-1")]
    key, value = independent_sign_receipts(
        items,
        hub_private=ring.private_json("hub:singapore"),
        sender="FRA",
        inbox=INBOX,
        issued_at="2026-11-23T06:03:01.000000Z",
    )
    adapter = NcbAdapter(ring.identity("FRA"), ring.directory, TOPICS)
    record = ReceivedRecord(INBOX, 0, 0, 0, key, value, (("ce_type", CE_TYPE.encode()),))
    got = adapter.receive(record)
    assert isinstance(got, Receipted)
    assert got.hub == "hub:singapore"
    assert [(r.receipt_id, r.delivered, r.recipient) for r in got.receipts] == [
        (i["receipt_id"], i["delivered"], i["recipient"]) for i in items
    ]
    assert [r.delivered_at.isoformat() for r in got.receipts] == [
        "2026-11-23T06:03:00.202457+00:00"
    ] * 3


def test_receipt_and_batch_ids_are_derived_alike() -> None:
    from schemas.receipts import batch_id_for, receipt_id_for

    delivered = str(uuid.uuid4())
    assert receipt_id(delivered, "ccc") == receipt_id_for(delivered, "ccc")
    ids = [receipt_id(delivered, r) for r in ("DEU", "ccc")]
    assert batch_id(ids) == batch_id_for(ids)


def test_a_reformatted_batch_is_the_same_batch(ring: Ring) -> None:
    record = main_batch(ring)
    batch = json.loads(record.value)
    reordered = {k: batch[k] for k in reversed(list(batch))}
    value = json.dumps(reordered, indent=2).encode()
    assert both(ring, value, record.key or b"") == ("accepted", "accepted")


def _edit(path: str, new: Any) -> Callable[[Json], None]:
    def change(batch: Json) -> None:
        *parents, last = path.split(".")
        target: Any = batch
        for name in parents:
            target = target[int(name)] if name.isdigit() else target[name]
        target[last] = new

    return change


def _flip_signature(batch: Json) -> None:
    raw = bytearray(b64d(batch["signature"]["value"]))
    raw[0] ^= 1
    batch["signature"]["value"] = b64e(bytes(raw))


UNSIGNED_EDITS: list[tuple[str, Callable[[Json], object], str]] = [
    ("untouched", lambda b: None, "accepted"),
    ("precedence raised", _edit("items.0.precedence", "FLASH"), "bad-signature"),
    (
        "delivered_at moved",
        _edit("items.0.delivered_at", "2026-11-23T06:03:00.000000Z"),
        "bad-signature",
    ),
    ("a receipt dropped", lambda b: b["items"].pop(), "bad-signature"),
    ("issued by another hub", _edit("hub", "hub:singapore"), "bad-signature"),
    ("hub not in the directory", _edit("hub", "hub:buenos-aires"), "unknown-sender"),
    ("signature byte flipped", _flip_signature, "bad-signature"),
    ("signature kid unknown", _edit("signature.kid", "0123456789abcdef"), "bad-signature"),
    ("receipt id not derived", _edit("items.0.receipt_id", str(uuid.uuid4())), "malformed"),
    ("format 1.0", _edit("receipts", 1.0), "malformed"),
    ("an NCB as the hub", _edit("hub", "DEU"), "malformed"),
    ("receipt repeated", lambda b: b["items"].append(b["items"][0]), "malformed"),
    ("time without microseconds", _edit("issued_at", "2026-11-23T12:00:00Z"), "malformed"),
    ("extra field", _edit("note", "x"), "malformed"),
]


@pytest.mark.parametrize(
    ("name", "change", "expected"), UNSIGNED_EDITS, ids=[e[0] for e in UNSIGNED_EDITS]
)
def test_an_edited_batch_is_refused_alike(
    ring: Ring, name: str, change: Callable[[Json], object], expected: str
) -> None:
    record = main_batch(ring)
    batch = json.loads(record.value)
    change(batch)
    value = json.dumps(batch).encode()
    assert both(ring, value, record.key or b"") == (expected, expected)


def test_a_batch_signed_by_a_non_hub_or_for_someone_else_is_refused_alike(ring: Ring) -> None:
    item = doc_item()
    for signer, sender, expected in [
        ("DEU", "FRA", "malformed"),  # an NCB cannot be a batch's hub
        ("hub:lyon", "DEU", "unexpected-origin"),  # signed for FRA's inbox, listing DEU's
    ]:
        key, value = independent_sign_receipts(
            [item],
            hub_private=ring.private_json(signer),
            sender=sender,
            inbox=INBOX,
            issued_at="2026-11-23T06:03:01.000000Z",
        )
        assert both(ring, value, key) == (expected, expected)


@pytest.mark.parametrize(
    ("reader", "key"),
    [("DEU", None), ("FRA", b"another-key"), ("FRA", b"")],
    ids=["read from another inbox", "another key", "no key"],
)
def test_a_batch_moved_to_another_inbox_or_key_is_refused_alike(
    ring: Ring, reader: str, key: bytes | None
) -> None:
    record = main_batch(ring)
    used = record.key if key is None else key
    inbox = TOPICS.inbox(reader)
    assert indep_outcome(ring, record.value, used or b"", inbox) == "bad-signature"
    adapter = NcbAdapter(ring.identity(reader), ring.directory, TOPICS)
    got = adapter.receive(ReceivedRecord(inbox, 0, 0, 0, used, record.value, record.headers))
    assert isinstance(got, Unopened)
    assert got.reason == "bad-signature"


def test_the_size_limit_is_inclusive_and_comes_first(ring: Ring) -> None:
    record = main_batch(ring)
    key = record.key or b""
    assert indep_outcome(ring, record.value, key) == "accepted"
    with pytest.raises(Refused, match="oversized"):
        independent_verify_receipts(
            record.value, INBOX, key, ring.directory_json, "FRA", max_bytes=len(record.value) - 1
        )
    small = NcbAdapter(
        ring.identity("FRA"), ring.directory, TOPICS, max_bytes=len(record.value) - 1
    )
    got = small.receive(ReceivedRecord(INBOX, 0, 0, 0, key, record.value, record.headers))
    assert isinstance(got, Unopened)
    assert got.reason == "oversized"


def test_the_signed_bytes_follow_the_document(ring: Ring) -> None:
    record = main_batch(ring)
    batch = json.loads(record.value)
    unsigned = {k: v for k, v in batch.items() if k != "signature"}
    expected = (
        b"I247-RCPT-v1\x00"
        + len(INBOX).to_bytes(4, "big")
        + INBOX.encode()
        + len(record.key or b"").to_bytes(4, "big")
        + (record.key or b"")
        + len(canonical_header(unsigned)).to_bytes(4, "big")
        + canonical_header(unsigned)
    )
    assert signed_bytes(INBOX, record.key or b"", batch) == expected
    public = ring.directory_json["participants"]["hub:lyon"]["signing"][0]["public"]
    Ed25519PublicKey.from_public_bytes(b64d(public)).verify(
        b64d(batch["signature"]["value"]), expected
    )
