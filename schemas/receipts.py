"""Delivery receipts as signed batches: a hub tells one sender which deliveries it made.

Theory of operation (the normative text is docs/wire-format.md, "Receipt batches"): a
receipt says only what the clear routing header already says (message id, recipient,
time), so it needs origin and integrity, not secrecy. A batch lists receipts for one
sender, is written to that sender's inbox in clear, and is signed once with the hub's
Ed25519 key over the topic, the record key and the batch's canonical JSON, so it cannot
be edited or moved to another inbox unnoticed. One signature covers every receipt in the
batch: a receipt costs a share of one signature instead of an HPKE seal of its own.

Receipt ids are derived from (message id, recipient), never drawn, so a receipt re-sent
after a restart, in this batch or another, is recognised as a duplicate by its reader.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from schemas.errors import BadSignature, MalformedMessage, OversizedMessage
from schemas.header import MessageId, Precedence, TraceId, UtcTimestamp, format_timestamp
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import ParticipantKind, RecipientId, kind_of
from schemas.sealing import canonical_json

__all__ = [
    "MAX_RECEIPTS",
    "RECEIPTS_FORMAT",
    "RECEIPT_LABEL",
    "Receipt",
    "ReceiptBatch",
    "ReceiptSignature",
    "batch_id_for",
    "listed_receipts",
    "receipt_id_for",
    "receipts_signed_bytes",
    "sign_receipts",
    "verify_receipts",
]

RECEIPTS_FORMAT = 1
RECEIPT_LABEL = b"I247-RCPT-v1\x00"
MAX_RECEIPTS = 1024  # about 240 bytes each: a full batch stays far below 1 MB
_NAMESPACE_BYTES = uuid.UUID("6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de").bytes
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` (RFC 9562 §5.5), without building UUID objects."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def receipt_id_for(message_id: str, recipient: str) -> str:
    """``uuid5(namespace, "<message id>/<recipient>")``: the same delivery, the same id."""
    return _uuid5(f"{message_id}/{recipient}")


def batch_id_for(receipt_ids: Sequence[str]) -> str:
    """``uuid5(namespace, "batch/" + ids joined by ",")``: a re-sent batch keeps its key."""
    return _uuid5("batch/" + ",".join(receipt_ids))


def _hub(value: str) -> str:
    if kind_of(value) is not ParticipantKind.HUB:
        raise ValueError("only a CCC hub (hub:<site>) issues receipts")
    return value


def _inbox_owner(value: str) -> str:
    if kind_of(value) not in (ParticipantKind.NCB, ParticipantKind.TEAM):
        raise ValueError("receipts go to an NCB or a team, the only senders with an inbox")
    return value


_B64_64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")]
_Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class Receipt(BaseModel):
    """One delivery: ``delivered`` reached ``recipient``'s inbox (or the CCC) at a time."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    receipt_id: MessageId
    delivered: MessageId
    recipient: RecipientId
    precedence: Precedence
    delivered_at: UtcTimestamp
    trace_id: TraceId


class ReceiptSignature(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kid: _Kid
    value: _B64_64


class ReceiptBatch(BaseModel):
    """Receipts from one hub for one sender, signed once (docs/wire-format.md §10)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    receipts: Literal[1]
    batch_id: MessageId
    hub: Annotated[str, AfterValidator(_hub)]
    sender: Annotated[str, AfterValidator(_inbox_owner)]
    issued_at: UtcTimestamp
    items: Annotated[list[Receipt], Field(min_length=1, max_length=MAX_RECEIPTS)]
    signature: ReceiptSignature

    def unsigned_json(self) -> dict[str, Any]:
        """The batch as JSON values without its signature (what is signed, §10.3)."""
        stamps: dict[datetime, str] = {}  # a batch's times are mostly one instant

        def stamp(moment: datetime) -> str:
            if moment not in stamps:
                stamps[moment] = format_timestamp(moment)
            return stamps[moment]

        return {
            "receipts": self.receipts,
            "batch_id": self.batch_id,
            "hub": self.hub,
            "sender": self.sender,
            "issued_at": stamp(self.issued_at),
            "items": [
                {
                    "receipt_id": item.receipt_id,
                    "delivered": item.delivered,
                    "recipient": item.recipient,
                    "precedence": item.precedence.value,
                    "delivered_at": stamp(item.delivered_at),
                    "trace_id": item.trace_id,
                }
                for item in self.items
            ],
        }

    def to_bytes(self) -> bytes:
        """The Kafka record value (compact UTF-8 JSON)."""
        document = self.unsigned_json()
        document["signature"] = {"kid": self.signature.kid, "value": self.signature.value}
        return json.dumps(document, separators=(",", ":")).encode()


def _placeholder(kid: str) -> ReceiptSignature:
    return ReceiptSignature(kid=kid, value="A" * 86 + "==")  # replaced once signed


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def receipts_signed_bytes(topic: str, key: bytes, unsigned: dict[str, Any]) -> bytes:
    """What the hub signs: label, topic, record key and the canonical batch sans signature."""
    return RECEIPT_LABEL + _lp(topic.encode()) + _lp(key) + _lp(canonical_json(unsigned))


def sign_receipts(
    items: Sequence[Receipt],
    *,
    hub: PrivateIdentity,
    sender: str,
    topic: str,
    issued_at: datetime,
) -> ReceiptBatch:
    """Sign ``items`` as ``hub`` for ``sender``'s inbox ``topic``; the key is the batch id."""
    batch_id = batch_id_for([item.receipt_id for item in items])
    unsigned = {
        "receipts": RECEIPTS_FORMAT,
        "batch_id": batch_id,
        "hub": hub.participant,
        "sender": sender,
        "issued_at": issued_at,
        "items": list(items),
    }
    # validate before signing, so a bad batch is our bug here and never a reader's refusal
    draft = ReceiptBatch.model_validate({**unsigned, "signature": _placeholder(hub.signing_kid)})
    payload = draft.unsigned_json()
    value = hub.signing_key.sign(receipts_signed_bytes(topic, batch_id.encode(), payload))
    signature = ReceiptSignature(kid=hub.signing_kid, value=base64.b64encode(value).decode())
    return draft.model_copy(update={"signature": signature})


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedMessage("a JSON object in the receipt batch repeats a key")
    return result


def _check_wire_forms(document: dict[str, Any], batch: ReceiptBatch) -> None:
    """What the model lets through but the wire format forbids."""
    if type(document.get("receipts")) is not int:
        raise MalformedMessage("receipts must be the integer 1")
    times = [document["issued_at"], *(item["delivered_at"] for item in document["items"])]
    if not all(isinstance(t, str) and _TIME.fullmatch(t) for t in times):
        raise MalformedMessage("receipt times must be RFC 3339 UTC with microseconds and 'Z'")
    seen: set[str] = set()
    for item in batch.items:
        if item.receipt_id != receipt_id_for(item.delivered, item.recipient):
            raise MalformedMessage(
                f"receipt {item.receipt_id} is not the id derived from {item.delivered} "
                f"and {item.recipient}"
            )
        if item.receipt_id in seen:
            raise MalformedMessage(f"receipt {item.receipt_id} appears twice in one batch")
        seen.add(item.receipt_id)


def verify_receipts(
    raw: bytes, *, topic: str, key: bytes, directory: Directory, max_bytes: int
) -> ReceiptBatch:
    """Parse and verify a receipt batch read from ``topic`` under record ``key``.

    Raises ``OversizedMessage`` or ``MalformedMessage`` (not a batch), ``UnknownParticipant``
    (the hub is not in the directory) or ``BadSignature`` (not the hub's key, or the batch,
    its topic or its key changed after signing).
    """
    if len(raw) > max_bytes:
        raise OversizedMessage(f"receipt batch is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        document = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        batch = ReceiptBatch.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"receipt batch field {where}: {first['msg']}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"receipt batch is not JSON: {exc}") from None
    _check_wire_forms(document, batch)
    try:
        signature = base64.b64decode(batch.signature.value, validate=True)
    except binascii.Error:
        raise MalformedMessage("receipt signature is not base64") from None
    if base64.b64encode(signature).decode() != batch.signature.value:
        raise MalformedMessage("receipt signature is not canonical base64 (spare bits zero)")
    hub = directory.get(batch.hub, role="sender")
    public = hub.signing.get(batch.signature.kid)
    if public is None:
        owner = directory.signing_key_owner(batch.signature.kid)
        whose = f"it belongs to {owner}" if owner else "no participant has it"
        raise BadSignature(
            f"receipt batch {batch.batch_id} is signed with key {batch.signature.kid}, "
            f"not one of {batch.hub}'s; {whose}"
        )
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    try:
        public.verify(signature, receipts_signed_bytes(topic, key, unsigned))
    except InvalidSignature:
        raise BadSignature(
            f"receipt batch {batch.batch_id} does not verify with {batch.hub}'s key "
            f"{batch.signature.kid}: it was altered, or signed for another topic or key "
            f"than {topic!r} and {key[:64]!r}"
        ) from None
    return batch


def listed_receipts(raw: bytes) -> int:
    """How many receipts a batch lists, read without verifying it (for counting what is
    refused unread, e.g. a fenced batch); 1 if it does not parse."""
    try:
        items = json.loads(raw).get("items")
    except (ValueError, AttributeError):
        return 1
    return len(items) if isinstance(items, list) and items else 1
