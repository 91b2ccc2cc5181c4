"""Seal, verify and open messages: the envelope every record on the backbone carries.

Theory of operation (the normative text is docs/wire-format.md):

* the body is encrypted once, AES-256-GCM under a fresh 32-byte data key, with the
  *associated data* binding the routing header, the topic the sender published to and
  the record key; so a ciphertext cannot be edited or moved to another record unnoticed;
* the data key is wrapped for each key holder with single-shot HPKE (RFC 9180, base mode),
  the suite named in the header; ``ccc`` expands to every hub and the auditor, and the
  sender always keeps a wrap of its own so it can read what it sent;
* two SHA-256 digests (header context, sealed body) are what the sender signs with
  Ed25519; checking the digests before the signature lets a hub say *what* changed
  (``TamperedMessage``) apart from *who* signed (``BadSignature``).

Hubs ``verify`` and route on the header; only key holders can ``open_sealed`` the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.bodies import BODY_ADAPTER, Body
from schemas.errors import (
    BadSignature,
    KeyRevoked,
    MalformedMessage,
    NotARecipient,
    OversizedMessage,
    TamperedMessage,
)
from schemas.header import MAX_RECIPIENTS, RoutingHeader, Suite, format_timestamp
from schemas.keys import Directory, PrivateIdentity
from schemas.participants import CCC
from schemas.sealing_memo import envelopes, remember_signature, verify_signature

__all__ = [
    "ENVELOPE_VERSION",
    "SIG_LABEL",
    "OpenedMessage",
    "SealedMessage",
    "associated_data",
    "body_digest",
    "canonical_json",
    "open_sealed",
    "parse_envelope",
    "seal",
    "verify",
]

ENVELOPE_VERSION = 1
AD_LABEL = b"I247-AD-v1\x00"
BODY_LABEL = b"I247-BODY-v1\x00"
SIG_LABEL = b"I247-SIG-v1\x00"
WRAP_LABEL = b"I247-WRAP-v1\x00"

_SUITES = {
    Suite.X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    Suite.MLKEM768_X25519: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}

RandomBytes = Callable[[int], bytes]
B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=2_000_000)]
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, non-ASCII escaped: the one byte form a header hashes to."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def associated_data(topic: str, key: bytes, canonical_header: bytes) -> bytes:
    """AEAD associated data: label, then topic, record key and header, each length-prefixed."""
    return AD_LABEL + _lp(topic.encode()) + _lp(key) + _lp(canonical_header)


def _wrap_info(message_id: str, holder: str) -> bytes:
    return WRAP_LABEL + message_id.encode() + b"\x00" + holder.encode()


class WrappedKey(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    recipient: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    kid: Kid
    enc: B64


class Digests(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    header: Hex64
    body: Hex64


class Signature(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kid: Kid
    value: B64


class _EnvelopeWire(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    envelope: Literal[1]
    header: RoutingHeader
    wrapped_keys: Annotated[list[WrappedKey], Field(min_length=1, max_length=4 * MAX_RECIPIENTS)]
    nonce: B64
    ciphertext: B64
    digests: Digests
    signature: Signature


def _b64d(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{what} is not valid base64: {exc}") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise MalformedMessage(f"{what} is not canonical base64 (spare bits must be zero)")
    return data


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body_digest(nonce: bytes, ciphertext: bytes, wraps: list[tuple[str, str, bytes]]) -> bytes:
    """SHA-256 over the sealed body: nonce, ciphertext, then every wrapped key in order."""
    h = hashlib.sha256(BODY_LABEL)
    h.update(_lp(nonce))
    h.update(_lp(ciphertext))
    h.update(struct.pack(">I", len(wraps)))
    for recipient, kid, enc in wraps:
        h.update(_lp(recipient.encode()))
        h.update(_lp(kid.encode()))
        h.update(_lp(enc))
    return h.digest()


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """A parsed envelope: the header for routing, the rest opaque until opened."""

    header: RoutingHeader
    canonical_header: bytes
    wraps: tuple[tuple[str, str, bytes], ...]  # (key holder, kid, HPKE enc||ct)
    nonce: bytes
    ciphertext: bytes
    header_digest: bytes
    body_digest: bytes
    signature_kid: str
    signature: bytes
    raw: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """The record bytes, when this process made them (``seal``); a copy made with
    ``dataclasses.replace`` has none and is written afresh."""

    def to_bytes(self) -> bytes:
        """The Kafka record value (UTF-8 JSON).

        Written piece by piece: the canonical header is spliced in as it is (it is already
        the compact, ASCII-escaped JSON a full ``json.dumps`` of the envelope would write),
        saving a JSON parse and a dump of the whole envelope per message.
        """
        if self.raw is not None:
            return self.raw
        wraps = ",".join(
            f'{{"recipient":{json.dumps(r)},"kid":{json.dumps(k)},"enc":"{_b64e(e)}"}}'
            for r, k, e in self.wraps
        )
        return b"".join(
            (
                b'{"envelope":%d,"header":' % ENVELOPE_VERSION,
                self.canonical_header,
                f',"wrapped_keys":[{wraps}],"nonce":"{_b64e(self.nonce)}",'.encode(),
                f'"ciphertext":"{_b64e(self.ciphertext)}",'.encode(),
                f'"digests":{{"header":"{self.header_digest.hex()}",'.encode(),
                f'"body":"{self.body_digest.hex()}"}},'.encode(),
                f'"signature":{{"kid":{json.dumps(self.signature_kid)},'.encode(),
                f'"value":"{_b64e(self.signature)}"}}}}'.encode(),
            )
        )


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    header: RoutingHeader
    body: Body


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedMessage("a JSON object repeats a key")
    return result


_CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def _check_wire_forms(document: dict[str, Any]) -> None:
    """What JSON parsing alone lets through but the wire format forbids (§2, §3)."""
    if type(document.get("envelope")) is not int:
        raise MalformedMessage("envelope must be the integer 1")
    header = document["header"]
    missing = set(RoutingHeader.model_fields) - set(header)
    if missing:
        raise MalformedMessage(f"header fields missing (null where optional): {sorted(missing)}")
    if type(header["schema_version"]) is not int:
        raise MalformedMessage("schema_version must be the integer 1")
    if not _CREATED_AT.fullmatch(str(header["created_at"])):
        raise MalformedMessage("created_at must be RFC 3339 UTC with microseconds and 'Z'")


def parse_envelope(raw: bytes, *, max_bytes: int) -> SealedMessage:
    """Parse a record value into a ``SealedMessage``; no key is needed, nothing is trusted yet.

    The same bytes parse to the same message: a process remembers the last few thousand
    (``schemas.sealing_memo``), including those it sealed itself.
    """
    if len(raw) > max_bytes:
        raise OversizedMessage(f"record is {len(raw)} bytes, over the limit of {max_bytes}")
    if type(raw) is not bytes:
        return _parse(raw)
    remembered = envelopes.get(raw)
    if isinstance(remembered, SealedMessage):
        return remembered
    sealed = _parse(raw)
    envelopes.put(raw, sealed)
    return sealed


def _parse(raw: bytes) -> SealedMessage:
    try:
        document = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"record is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("header"), dict):
        raise MalformedMessage("record is not a sealed envelope object with a header")
    try:
        wire = _EnvelopeWire.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"envelope field {where}: {first['msg']}") from None
    _check_wire_forms(document)
    nonce = _b64d(wire.nonce, "nonce")
    if len(nonce) != 12:
        raise MalformedMessage("nonce must be 12 bytes")
    ciphertext = _b64d(wire.ciphertext, "ciphertext")
    if len(ciphertext) < 16:
        raise MalformedMessage("ciphertext is shorter than its 16-byte tag")
    holders = [w.recipient for w in wire.wrapped_keys]
    if [h.encode() for h in holders] != sorted({h.encode() for h in holders}) or CCC in holders:
        raise MalformedMessage(
            "wrapped keys must name each key holder once, in ascending byte order, never 'ccc'"
        )
    return SealedMessage(
        header=wire.header,
        canonical_header=canonical_json(document["header"]),
        wraps=tuple((w.recipient, w.kid, _b64d(w.enc, "wrapped key")) for w in wire.wrapped_keys),
        nonce=nonce,
        ciphertext=ciphertext,
        header_digest=bytes.fromhex(wire.digests.header),
        body_digest=bytes.fromhex(wire.digests.body),
        signature_kid=wire.signature.kid,
        signature=_b64d(wire.signature.value, "signature"),
    )


def seal(
    header: RoutingHeader,
    body: Body,
    *,
    sender: PrivateIdentity,
    directory: Directory,
    topic: str,
    key: bytes,
    random_bytes: RandomBytes = os.urandom,
) -> SealedMessage:
    """Encrypt ``body`` for the header's recipients and sign the whole as ``sender``.

    ``topic`` and ``key`` are where the record will be published; readers must check
    them against the same values (see ``verify``).
    """
    if header.sender != sender.participant:
        raise ValueError(f"header sender {header.sender} is not the sealing identity")
    if body.type != header.message_type:
        raise ValueError(f"body type {body.type} does not match header {header.message_type}")
    holders = {sender.participant}
    for recipient in header.recipients:
        holders.update(directory.key_holders(recipient))
    canonical = canonical_json(header.model_dump(mode="json"))
    ad = associated_data(topic, key, canonical)
    dek = random_bytes(32)
    nonce = random_bytes(12)
    ciphertext = AESGCM(dek).encrypt(nonce, BODY_ADAPTER.dump_json(body), ad)
    suite = _SUITES[header.suite]
    wraps: list[tuple[str, str, bytes]] = []
    own = directory.identities.get(sender.participant) or sender.public()
    for holder in sorted(holders):
        public = (own if holder == sender.participant else directory.get(holder)).kem.get(
            header.suite
        )
        if public is None:
            raise ValueError(f"{holder} has no key for suite {header.suite.value}")
        revoked = directory.revoked.get(public.kid)
        if revoked is not None:  # a directory entry always names a live key: not expected
            raise KeyRevoked(
                holder,
                public.kid,
                revoked_at=format_timestamp(revoked.revoked_at),
                why=revoked.reason,
            )
        enc = suite.encrypt(dek, public.key, info=_wrap_info(header.message_id, holder))
        wraps.append((holder, public.kid, enc))
    h_digest = hashlib.sha256(ad).digest()
    b_digest = body_digest(nonce, ciphertext, wraps)
    signed = SIG_LABEL + h_digest + b_digest
    signature = sender.signing_key.sign(signed)
    sealed = SealedMessage(
        header,
        canonical,
        tuple(wraps),
        nonce,
        ciphertext,
        h_digest,
        b_digest,
        sender.signing_kid,
        signature,
    )
    raw = sealed.to_bytes()
    object.__setattr__(sealed, "raw", raw)
    envelopes.put(raw, sealed)
    remember_signature(sender.signing_public, signed, signature)
    return sealed


def verify(
    sealed: SealedMessage,
    *,
    topic: str,
    key: bytes,
    directory: Directory,
    at: datetime | None = None,
) -> RoutingHeader:
    """Check that the sender sealed exactly this, for this topic and key; return the header.

    A signing key the directory says is revoked is refused (``KeyRevoked``) before anything
    else about the signature; with ``at`` (intake's clock), so is a rotated-out key past
    its grace deadline (``KeyExpired``).
    """
    sender = directory.get(sealed.header.sender, role="sender")
    directory.check_signing_key(sender.participant, sealed.signature_kid, at)
    ad = associated_data(topic, key, sealed.canonical_header)
    if not hmac.compare_digest(hashlib.sha256(ad).digest(), sealed.header_digest):
        raise TamperedMessage(
            f"the routing header, topic or key of {sealed.header.message_id} differs from "
            f"what {sealed.header.sender} signed (expected topic {topic!r})"
        )
    computed = body_digest(sealed.nonce, sealed.ciphertext, list(sealed.wraps))
    if not hmac.compare_digest(computed, sealed.body_digest):
        raise TamperedMessage(
            f"the sealed body of {sealed.header.message_id} differs from what "
            f"{sealed.header.sender} signed"
        )
    public = sender.signing.get(sealed.signature_kid)
    if public is None:
        owner = directory.signing_key_owner(sealed.signature_kid)
        whose = f"it belongs to {owner}" if owner else "no participant has it"
        raise BadSignature(
            f"signed with key {sealed.signature_kid}, not one of {sender.participant}'s; {whose}"
        )
    try:
        verify_signature(
            public, sealed.signature, SIG_LABEL + sealed.header_digest + sealed.body_digest
        )
    except InvalidSignature:
        raise BadSignature(
            f"signature does not verify with {sender.participant}'s key {sealed.signature_kid}"
        ) from None
    expected = {sealed.header.sender}
    for recipient in sealed.header.recipients:
        expected.update(directory.key_holders(recipient))
    holders = {holder for holder, _, _ in sealed.wraps}
    if holders != expected:
        raise MalformedMessage(
            f"{sealed.header.message_id} wraps its key for {sorted(holders)}, but its recipients "
            f"and sender are {sorted(expected)}: a reader (the auditor, say) would be left out"
        )
    return sealed.header


def open_sealed(
    sealed: SealedMessage,
    *,
    topic: str,
    key: bytes,
    directory: Directory,
    identity: PrivateIdentity,
) -> OpenedMessage:
    """Verify, then decrypt with one of ``identity``'s keys; only key holders succeed."""
    header = verify(sealed, topic=topic, key=key, directory=directory)
    wrap = next(
        (
            (kid, enc)
            for holder, kid, enc in sealed.wraps
            if holder == identity.participant and kid in identity.kem_keys
        ),
        None,
    )
    if wrap is None:
        raise NotARecipient(
            f"{identity.participant} holds no key that {header.message_id} was sealed for"
        )
    kem_key = identity.kem_keys[wrap[0]]
    try:
        dek = _SUITES[kem_key.suite].decrypt(
            wrap[1], kem_key.key, info=_wrap_info(header.message_id, identity.participant)
        )
        if len(dek) != 32:
            raise ValueError("the data key of AES-256-GCM is 32 bytes")
        plaintext = AESGCM(dek).decrypt(
            sealed.nonce, sealed.ciphertext, associated_data(topic, key, sealed.canonical_header)
        )
    except (InvalidTag, ValueError):
        raise TamperedMessage(f"{header.message_id} does not decrypt: altered in transit") from None
    try:
        body = BODY_ADAPTER.validate_json(plaintext)
    except ValidationError as exc:
        raise MalformedMessage(
            f"body of {header.message_id} is not valid: {exc.errors()[0]['msg']}"
        ) from None
    if body.type != header.message_type:
        raise TamperedMessage(
            f"body of {header.message_id} is of type {body.type.value}, "
            f"header says {header.message_type.value}"
        )
    return OpenedMessage(header, body)
