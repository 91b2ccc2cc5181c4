"""A second, minimal client of the wire format, written from docs/wire-format.md alone.

The first half is the independent client: verify (§6 steps 1-5), open (steps 6-7) and seal
(§4), using only the standard library and ``cryptography`` primitives and reading keys in
the file formats of §8. It never imports ``schemas``. The second half checks it against the
main implementation (``schemas.sealing``), used as a black box, in both directions.

Where the document leaves a choice open, the reading taken is a named constant or comment
marked READING, so that a clarified document can be followed by changing one line.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.bodies import MessageBody
from schemas.errors import RejectedMessage
from schemas.header import Language, MessageType, Precedence, RoutingHeader, Suite
from schemas.keys import Directory, PrivateIdentity, init_keyring, load_directory, load_identity
from schemas.sealing import open_sealed, parse_envelope, seal, verify

# ======================= the independent client (docs/wire-format.md) ==================

Json = dict[str, Any]
MAX_BYTES = 1_048_576  # §1
X25519_SUITE = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"
HYBRID_SUITE = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
HPKE_SUITES = {
    X25519_SUITE: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    HYBRID_SUITE: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
ENC_LENGTH = {X25519_SUITE: 80, HYBRID_SUITE: 1168}  # §4.2 table
CCC_HOLDERS = ("hub:buenos-aires", "hub:lyon", "hub:singapore", "auditor")  # §4.2
# §6 step 7 (clarified after this client's first run): an invalid body is "malformed";
# a valid body whose type differs from the header's message_type is "tampered".
BODY_REASON = "malformed"
TYPE_MISMATCH_REASON = "tampered"
# §3.1 (clarified): U+0000-U+001F and U+007F are written \u00XX.
CONTROL_MAX = 0x1F
DEL = 0x7F

ENVELOPE_FIELDS = {"envelope", "header", "wrapped_keys", "nonce", "ciphertext", "digests"}
ENVELOPE_FIELDS |= {"signature"}
HEADER_ENUMS: dict[str, set[str]] = {
    "message_type": {"message", "diffusion", "urgent-request", "db-check-query"}
    | {"db-check-result", "notice-request", "ack", "delivery-receipt"}
    | {"notice-decision", "notice", "diffusion-recall", "renewal-prompt"}
    | {"team-request", "team-decision", "team-report", "team-conversion", "deployment-closed"}
    | {"check-request", "check-answer", "hit-confirmation-request", "hit-confirmation"}
    | {"multi-country-query", "multi-country-reply", "consolidated-answer"},
    "precedence": {"FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"},
    "language": {"ar", "en", "es", "fr"},
    "handling": {"H0", "H1", "H2", "H3"},
    "tlp": {"TLP:RED", "TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR"},
    "suite": set(HPKE_SUITES),
}
HEADER_FIELDS = set(HEADER_ENUMS) | {"schema_version", "message_id", "sender", "recipients"}
HEADER_FIELDS |= {"created_at", "case_id", "correlation_id", "trace_id", "evaluation", "flags"}
FLAGS = {"wanted-person-hit", "stolen-document-hit", "threat-to-life", "mass-casualty"}
_NCB_OR_TEAM = r"[A-Z]{3}|team:[a-z0-9][a-z0-9-]{1,47}"  # §5
PARTICIPANT = re.compile(rf"{_NCB_OR_TEAM}|hub:(lyon|buenos-aires|singapore)|auditor")
RECIPIENT = re.compile(rf"{_NCB_OR_TEAM}|ccc")  # §3: "NCBs, teams, or `ccc`"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
HEX = {16: re.compile(r"[0-9a-f]{16}"), 32: re.compile(r"[0-9a-f]{32}")}
HEX[64] = re.compile(r"[0-9a-f]{64}")
EVALUATION = re.compile(r"[ABCX][1-4]")


class Refused(Exception):
    """A refusal carrying the doc's reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def need(condition: bool, reason: str = "malformed") -> None:
    if not condition:
        raise Refused(reason)


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: Any) -> bytes:
    need(isinstance(text, str))
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise Refused("malformed") from None
    need(b64e(data) == text)  # READING: only the canonical encoding is "b64" (RFC 4648 §3.5)
    return data


def matches(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def canonical_header(header: Json) -> bytes:
    """§3.1 from its prose (not from its Python one-liner, which a test compares)."""

    def string(text: str) -> str:
        out = []
        for char in text:
            point = ord(char)
            if char in '"\\':
                out.append("\\" + char)
            elif char in "\n\r\t\b\f":
                out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[char])
            elif point <= CONTROL_MAX or DEL <= point <= 0xFFFF:
                out.append(f"\\u{point:04x}")
            elif point > 0xFFFF:
                high, low = divmod(point - 0x10000, 0x400)
                out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'

    def value(item: Any) -> str:
        if item is None or isinstance(item, bool):
            return {None: "null", True: "true", False: "false"}[item]
        if isinstance(item, int):
            return str(item)
        if isinstance(item, str):
            return string(item)
        if isinstance(item, list):
            return "[" + ",".join(value(x) for x in item) + "]"
        need(isinstance(item, dict))
        return "{" + ",".join(f"{string(k)}:{value(item[k])}" for k in sorted(item)) + "}"

    return value(header).encode("ascii")


def associated_data(topic: str, record_key: bytes, header: Json) -> bytes:
    return b"I247-AD-v1\0" + lp(topic.encode()) + lp(record_key) + lp(canonical_header(header))


def body_digest(envelope: Json) -> bytes:
    data = b"I247-BODY-v1\0" + lp(b64d(envelope["nonce"])) + lp(b64d(envelope["ciphertext"]))
    data += struct.pack(">I", len(envelope["wrapped_keys"]))
    for wrap in envelope["wrapped_keys"]:
        data += lp(wrap["recipient"].encode()) + lp(wrap["kid"].encode()) + lp(b64d(wrap["enc"]))
    return hashlib.sha256(data).digest()


def wrap_info(message_id: str, holder: str) -> bytes:
    return b"I247-WRAP-v1\0" + message_id.encode("ascii") + b"\0" + holder.encode("ascii")


def _strict_json(text: bytes) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> Json:
        need(len({k for k, _ in items}) == len(items))  # "no JSON object may repeat a key"
        return dict(items)

    def no_float(_: str) -> Any:
        raise Refused("malformed")  # "no floating-point numbers" (also NaN, Infinity)

    try:
        parsed = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=pairs,
            parse_float=no_float,
            parse_constant=no_float,
        )
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")  # no lone surrogates ("\\ud800")
        return parsed
    except ValueError:  # also UnicodeDecodeError, UnicodeEncodeError, JSONDecodeError
        raise Refused("malformed") from None


def _check_header(h: Any) -> None:  # §3
    need(isinstance(h, dict) and set(h) == HEADER_FIELDS)
    need(type(h["schema_version"]) is int and h["schema_version"] == 1)
    need(matches(h["message_id"], UUID) and matches(h["sender"], PARTICIPANT))
    recipients = h["recipients"]
    need(isinstance(recipients, list) and 1 <= len(recipients) <= 256)
    need(all(matches(r, RECIPIENT) for r in recipients) and len(set(recipients)) == len(recipients))
    need(all(isinstance(h[k], str) and h[k] in allowed for k, allowed in HEADER_ENUMS.items()))
    need(matches(h["created_at"], TIME))
    try:
        datetime.strptime(h["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise Refused("malformed") from None
    for name in ("case_id", "correlation_id"):
        need(h[name] is None or (isinstance(h[name], str) and 1 <= len(h[name]) <= 128))
    need(matches(h["trace_id"], HEX[32]) and matches(h["evaluation"], EVALUATION))
    flags = h["flags"]  # READING: "any of" means a set: distinct, so at most four
    need(isinstance(flags, list) and all(isinstance(f, str) and f in FLAGS for f in flags))
    need(len(set(flags)) == len(flags))


def parse(value: bytes, max_bytes: int = MAX_BYTES) -> Json:
    """§6 step 1."""
    need(len(value) <= max_bytes, "oversized")
    envelope = _strict_json(value)
    need(isinstance(envelope, dict) and set(envelope) == ENVELOPE_FIELDS)
    need(type(envelope["envelope"]) is int and envelope["envelope"] == 1)
    _check_header(envelope["header"])
    wraps = envelope["wrapped_keys"]
    need(isinstance(wraps, list) and 1 <= len(wraps) <= 1024)
    for wrap in wraps:
        need(isinstance(wrap, dict) and set(wrap) == {"recipient", "kid", "enc"})
        need(matches(wrap["recipient"], PARTICIPANT) and matches(wrap["kid"], HEX[16]))
        b64d(wrap["enc"])  # READING: its length per suite (§4.2) is an open-time matter
    names = [wrap["recipient"].encode() for wrap in wraps]
    need(names == sorted(set(names)))  # READING: "ascending" is strict (each holder once)
    need(len(b64d(envelope["nonce"])) == 12 and len(b64d(envelope["ciphertext"])) >= 16)
    digests, signature = envelope["digests"], envelope["signature"]
    need(isinstance(digests, dict) and set(digests) == {"header", "body"})
    need(matches(digests["header"], HEX[64]) and matches(digests["body"], HEX[64]))
    need(isinstance(signature, dict) and set(signature) == {"kid", "value"})
    need(matches(signature["kid"], HEX[16]) and len(b64d(signature["value"])) == 64)
    return cast(Json, envelope)


def _verify(value: bytes, topic: str, key: bytes, directory: Json, max_bytes: int) -> Json:
    envelope = parse(value, max_bytes)
    header = envelope["header"]
    sender = directory["participants"].get(header["sender"])
    need(sender is not None, "unknown-sender")
    header_digest = hashlib.sha256(associated_data(topic, key, header)).digest()
    need(hmac.compare_digest(header_digest.hex(), envelope["digests"]["header"]), "tampered")
    digest = body_digest(envelope)
    need(hmac.compare_digest(digest.hex(), envelope["digests"]["body"]), "tampered")
    publics = {k["kid"]: k["public"] for k in sender["signing"]}
    need(envelope["signature"]["kid"] in publics, "bad-signature")
    public = Ed25519PublicKey.from_public_bytes(b64d(publics[envelope["signature"]["kid"]]))
    try:
        public.verify(
            b64d(envelope["signature"]["value"]), b"I247-SIG-v1\0" + header_digest + digest
        )
    except InvalidSignature:
        raise Refused("bad-signature") from None
    return envelope


def independent_verify(
    record_value: bytes,
    topic: str,
    record_key: bytes,
    directory_json: Json,
    *,
    max_bytes: int = MAX_BYTES,
) -> Json:
    """§6 steps 1-5: the header, or ``Refused``."""
    return cast(Json, _verify(record_value, topic, record_key, directory_json, max_bytes)["header"])


def kem_private(entry: Json) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
    x = x25519.X25519PrivateKey.from_private_bytes(b64d(entry["private"]["x25519"]))
    if entry["suite"] == X25519_SUITE:
        return x
    ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(b64d(entry["private"]["mlkem768"]))
    return hpke.MLKEM768X25519PrivateKey(ml, x)


def kem_public(entry: Json) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
    x = x25519.X25519PublicKey.from_public_bytes(b64d(entry["public"]["x25519"]))
    if entry["suite"] == X25519_SUITE:
        return x
    ml = mlkem.MLKEM768PublicKey.from_public_bytes(b64d(entry["public"]["mlkem768"]))
    return hpke.MLKEM768X25519PublicKey(ml, x)


def independent_open(
    record_value: bytes,
    topic: str,
    record_key: bytes,
    directory_json: Json,
    private_json: Json,
    *,
    max_bytes: int = MAX_BYTES,
) -> Json:
    """§6 steps 1-7 for the reader whose private file is ``private_json``: the body."""
    envelope = _verify(record_value, topic, record_key, directory_json, max_bytes)
    header, me = envelope["header"], private_json["participant"]
    mine = {entry["kid"]: entry for entry in private_json["kem"]}
    wrap = next(
        (w for w in envelope["wrapped_keys"] if w["recipient"] == me and w["kid"] in mine), None
    )
    need(wrap is not None, "not-a-recipient")
    assert wrap is not None
    entry = mine[wrap["kid"]]
    try:
        need(entry["suite"] == header["suite"], "tampered")
        suite = HPKE_SUITES[header["suite"]]
        dek = suite.decrypt(
            b64d(wrap["enc"]), kem_private(entry), info=wrap_info(header["message_id"], me)
        )
        need(len(dek) == 32, "tampered")  # AES-256
        ad = associated_data(topic, record_key, header)
        plaintext = AESGCM(dek).decrypt(b64d(envelope["nonce"]), b64d(envelope["ciphertext"]), ad)
    except (InvalidTag, ValueError):
        raise Refused("tampered") from None
    try:
        body = _strict_json(plaintext)
    except Refused:
        raise Refused(BODY_REASON) from None
    need(isinstance(body, dict), BODY_REASON)
    need(body.get("type") == header["message_type"], TYPE_MISMATCH_REASON)
    return cast(Json, body)


def sign_envelope(envelope: Json, topic: str, record_key: bytes, private_json: Json) -> bytes:
    """§4.3: fill in ``digests`` and ``signature`` and serialise (as UTF-8, not ASCII)."""
    header_digest = hashlib.sha256(associated_data(topic, record_key, envelope["header"])).digest()
    digest = body_digest(envelope)
    signer = Ed25519PrivateKey.from_private_bytes(b64d(private_json["signing"]["private"]))
    envelope["digests"] = {"header": header_digest.hex(), "body": digest.hex()}
    envelope["signature"] = {
        "kid": private_json["signing"]["kid"],
        "value": b64e(signer.sign(b"I247-SIG-v1\0" + header_digest + digest)),
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def independent_seal(
    header: Json,
    body: Json,
    *,
    topic: str,
    record_key: bytes,
    directory_json: Json,
    private_json: Json,
    dek: bytes | None = None,
) -> bytes:
    """§4: the record value."""
    participants = directory_json["participants"]
    holders = {header["sender"]}
    for recipient in header["recipients"]:
        holders |= (
            {h for h in CCC_HOLDERS if h in participants} if recipient == "ccc" else {recipient}
        )
    dek, nonce = dek or os.urandom(32), os.urandom(12)
    body_json = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ad = associated_data(topic, record_key, header)
    wraps = []
    for holder in sorted(holders, key=str.encode):
        entry = [k for k in participants[holder]["kem"] if k["suite"] == header["suite"]][-1]
        info = wrap_info(header["message_id"], holder)
        enc = HPKE_SUITES[header["suite"]].encrypt(dek, kem_public(entry), info=info)
        wraps.append({"recipient": holder, "kid": entry["kid"], "enc": b64e(enc)})
    envelope: Json = {
        "envelope": 1,
        "header": header,
        "wrapped_keys": wraps,
        "nonce": b64e(nonce),
        "ciphertext": b64e(AESGCM(dek).encrypt(nonce, body_json, ad)),
    }
    return sign_envelope(envelope, topic, record_key, private_json)


# ======================= cross-checks against schemas.sealing ==========================

TOPIC, KEY = "i247.inbound", b"FRA"
PEOPLE = ("FRA", "DEU", "ITA", "hub:lyon", "hub:buenos-aires", "hub:singapore", "auditor")
SUITES = [Suite.X25519, Suite.MLKEM768_X25519]
BODY = MessageBody(subject="Wanted person located", text='Seen in Zürich 🚓, café "Nord"\n')
BODY_JSON: Json = {"type": "message", "subject": BODY.subject, "text": BODY.text}


@dataclass
class Ring:
    path: Path
    directory_json: Json
    directory: Directory
    _identities: dict[str, PrivateIdentity] = field(default_factory=dict)

    def private_json(self, who: str) -> Json:
        return cast(
            Json, json.loads((self.path / "private" / f"{who.replace(':', '_')}.json").read_text())
        )

    def identity(self, who: str) -> PrivateIdentity:
        if who not in self._identities:
            self._identities[who] = load_identity(self.path, who)
        return self._identities[who]


def make_ring(path: Path, people: tuple[str, ...]) -> Ring:
    init_keyring(path, people)
    directory_json = cast(Json, json.loads((path / "directory.json").read_text()))
    return Ring(path, directory_json, load_directory(path))


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Ring:
    return make_ring(tmp_path_factory.mktemp("wire-keys"), PEOPLE)


def main_header(
    suite: Suite = Suite.X25519, recipients: tuple[str, ...] = ("DEU",), **extra: Any
) -> RoutingHeader:
    return RoutingHeader(
        message_id=str(uuid4()),
        sender="FRA",
        recipients=list(recipients),
        message_type=MessageType.MESSAGE,
        precedence=Precedence.ROUTINE,
        created_at=datetime(2026, 11, 23, 6, 3, 0, 202457, tzinfo=UTC),
        language=Language.EN,
        trace_id=uuid4().hex,
        suite=suite,
        **extra,
    )


def main_seal(ring: Ring, header: RoutingHeader) -> bytes:
    sealed = seal(
        header, BODY, sender=ring.identity("FRA"), directory=ring.directory, topic=TOPIC, key=KEY
    )
    return sealed.to_bytes()


def doc_header(
    suite: str = X25519_SUITE, recipients: tuple[str, ...] = ("DEU",), **extra: Any
) -> Json:
    """A header built from the §3 table, without the main implementation."""
    header: Json = {
        "schema_version": 1,
        "message_id": str(uuid4()),
        "sender": "FRA",
        "recipients": list(recipients),
        "message_type": "message",
        "precedence": "ROUTINE",
        "created_at": "2026-11-23T06:03:00.202457Z",
        "language": "en",
        "case_id": None,
        "correlation_id": None,
        "trace_id": uuid4().hex,
        "handling": "H0",
        "tlp": "TLP:AMBER",
        "evaluation": "B2",
        "flags": [],
        "suite": suite,
    }
    header.update(extra)
    return header


def indep_seal(ring: Ring, header: Json, body: Json = BODY_JSON, **kw: Any) -> bytes:
    return independent_seal(
        header,
        body,
        topic=TOPIC,
        record_key=KEY,
        directory_json=ring.directory_json,
        private_json=ring.private_json("FRA"),
        **kw,
    )


def main_outcome(
    ring: Ring,
    value: bytes,
    *,
    topic: str = TOPIC,
    key: bytes = KEY,
    reader: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> str:
    try:
        sealed = parse_envelope(value, max_bytes=max_bytes)
        if reader is None:
            verify(sealed, topic=topic, key=key, directory=ring.directory)
        else:
            open_sealed(
                sealed,
                topic=topic,
                key=key,
                directory=ring.directory,
                identity=ring.identity(reader),
            )
    except RejectedMessage as refusal:
        return str(refusal.reason.value)
    return "accepted"


def indep_outcome(
    ring: Ring,
    value: bytes,
    *,
    topic: str = TOPIC,
    key: bytes = KEY,
    reader: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> str:
    try:
        if reader is None:
            independent_verify(value, topic, key, ring.directory_json, max_bytes=max_bytes)
        else:
            private = ring.private_json(reader)
            independent_open(value, topic, key, ring.directory_json, private, max_bytes=max_bytes)
    except Refused as refusal:
        return refusal.reason
    return "accepted"


def both(ring: Ring, value: bytes, **kw: Any) -> tuple[str, str]:
    return main_outcome(ring, value, **kw), indep_outcome(ring, value, **kw)


def edited(value: bytes, change: Callable[[Json], object], signer: Json | None = None) -> bytes:
    """Apply ``change`` to the parsed envelope; re-sign as ``signer`` if given."""
    envelope = json.loads(value)
    change(envelope)
    if signer is not None:
        return sign_envelope(envelope, TOPIC, KEY, signer)
    return json.dumps(envelope).encode()


# ---- 1. main seal -> independent verify and open -------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_main_sealed_message_opens_independently_for_every_holder(ring: Ring, suite: Suite) -> None:
    header = main_header(suite, ("DEU", "ccc"), case_id="Zürich-🚓-1")
    value = main_seal(ring, header)
    assert independent_verify(value, TOPIC, KEY, ring.directory_json) == header.model_dump(
        mode="json"
    )
    for reader in ("DEU", "FRA", "hub:lyon", "hub:buenos-aires", "hub:singapore", "auditor"):
        private = ring.private_json(reader)
        assert independent_open(value, TOPIC, KEY, ring.directory_json, private) == BODY_JSON


@pytest.mark.parametrize("suite", SUITES)
def test_a_non_recipient_is_refused_alike(ring: Ring, suite: Suite) -> None:
    value = main_seal(ring, main_header(suite, ("DEU", "ccc")))
    assert both(ring, value, reader="ITA") == ("not-a-recipient", "not-a-recipient")


@pytest.mark.parametrize("suite", SUITES)
def test_ccc_expands_to_the_hubs_and_auditor_and_the_sender_holds_a_wrap(
    ring: Ring, suite: Suite
) -> None:
    wraps = json.loads(main_seal(ring, main_header(suite, ("ccc", "DEU"))))["wrapped_keys"]
    expected = sorted(["FRA", "DEU", *CCC_HOLDERS], key=str.encode)
    assert [w["recipient"] for w in wraps] == expected
    for wrap in wraps:
        current = [
            k
            for k in ring.directory_json["participants"][wrap["recipient"]]["kem"]
            if k["suite"] == suite.value
        ][-1]
        assert wrap["kid"] == current["kid"]
        assert len(b64d(wrap["enc"])) == ENC_LENGTH[suite.value]


def test_ccc_expands_only_to_the_holders_in_the_directory(tmp_path: Path) -> None:
    small = make_ring(tmp_path, ("FRA", "DEU", "hub:lyon", "auditor"))
    wraps = json.loads(main_seal(small, main_header(recipients=("ccc",))))["wrapped_keys"]
    assert [w["recipient"] for w in wraps] == ["FRA", "auditor", "hub:lyon"]


# ---- 2. independent seal -> main parse, open and verify ------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_independently_sealed_message_opens_in_the_main_implementation(
    ring: Ring, suite: Suite
) -> None:
    header = doc_header(
        suite.value, ("DEU", "ccc"), case_id="Zürich-🚓-1", flags=["threat-to-life"]
    )
    value = indep_seal(ring, header)
    sealed = parse_envelope(value, max_bytes=MAX_BYTES)
    assert (
        verify(sealed, topic=TOPIC, key=KEY, directory=ring.directory).model_dump(mode="json")
        == header
    )
    for reader in ("DEU", "FRA", "hub:singapore", "auditor"):
        opened = open_sealed(
            sealed, topic=TOPIC, key=KEY, directory=ring.directory, identity=ring.identity(reader)
        )
        assert opened.body == BODY
        assert opened.header.model_dump(mode="json") == header
    assert both(ring, value, reader="ITA") == ("not-a-recipient", "not-a-recipient")


# ---- 3. byte-level agreement ---------------------------------------------------------

TRICKY_CASE_IDS = [
    "Zürich-🚓-1",
    'quote " backslash \\ slash / newline \n tab \t cr \r bs \b ff \f',
    "nul \x00 unit-separator \x1f",
    "c1 \x85 line-separator \u2028 bom \ufeff",
    "del \x7f",
]


@pytest.mark.parametrize("case_id", TRICKY_CASE_IDS)
def test_digests_and_canonical_header_agree_byte_for_byte(ring: Ring, case_id: str) -> None:
    envelope = json.loads(main_seal(ring, main_header(case_id=case_id)))
    ad = associated_data(TOPIC, KEY, envelope["header"])
    assert hashlib.sha256(ad).hexdigest() == envelope["digests"]["header"]
    assert body_digest(envelope).hex() == envelope["digests"]["body"]
    one_liner = json.dumps(
        envelope["header"], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    assert canonical_header(envelope["header"]) == one_liner.encode()


def test_canonical_header_escapes_as_the_document_says() -> None:
    header = doc_header(case_id="Zürich-🚓-1")
    assert b'"case_id":"Z\\u00fcrich-\\ud83d\\ude93-1"' in canonical_header(header)
    assert canonical_header(header).startswith(b'{"case_id":')  # keys sorted, no whitespace


def test_key_ids_and_key_files_follow_section_8(ring: Ring) -> None:
    def kid(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()[:16]

    for who in PEOPLE:
        public = ring.directory_json["participants"][who]
        private = ring.private_json(who)
        assert private["format"] == "i247-private/1"
        assert private["participant"] == who
        [signing] = public["signing"]
        seed = Ed25519PrivateKey.from_private_bytes(b64d(private["signing"]["private"]))
        assert seed.public_key().public_bytes_raw() == b64d(signing["public"])
        assert signing["kid"] == private["signing"]["kid"] == kid(b64d(signing["public"]))
        assert {k["suite"] for k in public["kem"]} == set(HPKE_SUITES)
        for entry, secret in zip(public["kem"], private["kem"], strict=True):
            raw = b64d(entry["public"].get("mlkem768", "")) + b64d(entry["public"]["x25519"])
            assert entry["kid"] == secret["kid"] == kid(raw)
            assert len(raw) == (32 if entry["suite"] == X25519_SUITE else 1184 + 32)
            check = HPKE_SUITES[entry["suite"]]
            assert (
                check.decrypt(check.encrypt(b"k", kem_public(entry)), kem_private(secret)) == b"k"
            )
    assert ring.directory_json["format"] == "i247-directory/1"
    assert (ring.path / "private" / "FRA.json").stat().st_mode & 0o777 == 0o600
    assert (ring.path / "private").stat().st_mode & 0o777 == 0o700


def test_a_reformatted_envelope_is_the_same_message(ring: Ring) -> None:
    envelope = json.loads(main_seal(ring, main_header(case_id="Zürich-🚓-1")))
    reordered = {k: envelope[k] for k in reversed(list(envelope))}
    reordered["header"] = {k: envelope["header"][k] for k in reversed(list(envelope["header"]))}
    value = json.dumps(reordered, indent=3, ensure_ascii=False).encode()
    assert both(ring, value, reader="DEU") == ("accepted", "accepted")


# ---- 4. refusals: both implementations give the same reason --------------------------


def _flip(field_name: str) -> Callable[[Json], None]:
    def change(envelope: Json) -> None:
        targets = {"enc": envelope["wrapped_keys"][0], "value": envelope["signature"]}
        target = targets.get(field_name, envelope)
        raw = bytearray(b64d(target[field_name]))
        raw[-1] ^= 1
        target[field_name] = b64e(bytes(raw))

    return change


def _set(path: str, new: Any) -> Callable[[Json], None]:
    def change(envelope: Json) -> None:
        *parents, last = path.split(".")
        for name in parents:
            envelope = envelope[name]
        envelope[last] = new

    return change


def _drop_wrap(recipient: str) -> Callable[[Json], None]:
    def change(envelope: Json) -> None:
        envelope["wrapped_keys"] = [
            w for w in envelope["wrapped_keys"] if w["recipient"] != recipient
        ]

    return change


UNSIGNED_EDITS: list[tuple[str, Callable[[Json], object], str]] = [
    ("untouched", lambda e: None, "accepted"),
    ("ciphertext byte flipped", _flip("ciphertext"), "tampered"),
    ("nonce byte flipped", _flip("nonce"), "tampered"),
    ("wrapped key byte flipped", _flip("enc"), "tampered"),
    ("wrapped key dropped", _drop_wrap("DEU"), "tampered"),
    ("precedence raised", _set("header.precedence", "FLASH"), "tampered"),
    ("recipient added", _set("header.recipients", ["DEU", "ITA"]), "tampered"),
    ("sender changed to another known one", _set("header.sender", "ITA"), "tampered"),
    ("sender not in the directory", _set("header.sender", "ESP"), "unknown-sender"),
    ("signature byte flipped", _flip("value"), "bad-signature"),
    ("signature kid unknown", _set("signature.kid", "0123456789abcdef"), "bad-signature"),
]


@pytest.mark.parametrize(
    ("name", "change", "expected"), UNSIGNED_EDITS, ids=[e[0] for e in UNSIGNED_EDITS]
)
def test_an_edited_envelope_is_refused_alike(
    ring: Ring, name: str, change: Callable[[Json], object], expected: str
) -> None:
    value = edited(main_seal(ring, main_header(recipients=("DEU", "ccc"))), change)
    assert both(ring, value) == (expected, expected)


@pytest.mark.parametrize("signer", ["DEU", "hub:lyon"])
@pytest.mark.parametrize("claimed_kid", ["signer's", "sender's"])
def test_a_signature_by_another_participant_is_refused_alike(
    ring: Ring, signer: str, claimed_kid: str
) -> None:
    key = ring.private_json(signer)
    if claimed_kid == "sender's":
        key["signing"]["kid"] = ring.private_json("FRA")["signing"]["kid"]
    value = edited(main_seal(ring, main_header()), lambda e: None, signer=key)
    assert both(ring, value) == ("bad-signature", "bad-signature")


@pytest.mark.parametrize(
    ("topic", "key"), [("i247.lane.flash", KEY), (TOPIC, b"DEU"), ("i247.inbound", b"")]
)
def test_a_record_moved_to_another_topic_or_key_is_refused_alike(
    ring: Ring, topic: str, key: bytes
) -> None:
    value = main_seal(ring, main_header())
    assert both(ring, value, topic=topic, key=key) == ("tampered", "tampered")
    assert both(ring, value, topic=topic, key=key, reader="DEU") == ("tampered", "tampered")


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("what", ["ciphertext", "nonce", "enc"])
def test_a_resigned_but_undecryptable_envelope_verifies_and_fails_to_open_alike(
    ring: Ring, suite: Suite, what: str
) -> None:
    """The sender itself spoils the crypto: steps 1-5 pass, step 6 must say tampered."""
    value = edited(
        main_seal(ring, main_header(suite)), _flip(what), signer=ring.private_json("FRA")
    )
    assert both(ring, value) == ("accepted", "accepted")
    reader = "DEU" if what != "enc" else json.loads(value)["wrapped_keys"][0]["recipient"]
    assert both(ring, value, reader=reader) == ("tampered", "tampered")


def test_a_wrapped_data_key_of_the_wrong_length_fails_to_open_alike(ring: Ring) -> None:
    value = indep_seal(ring, doc_header(), dek=os.urandom(16))  # an AES-128 key
    assert both(ring, value, reader="DEU") == ("tampered", "tampered")


def test_a_body_whose_type_differs_from_the_header_is_refused_alike(ring: Ring) -> None:
    value = indep_seal(ring, doc_header(), {**BODY_JSON, "type": "diffusion", "purpose": "x"})
    assert both(ring, value) == ("accepted", "accepted")
    assert both(ring, value, reader="DEU") == (TYPE_MISMATCH_REASON, TYPE_MISMATCH_REASON)


def test_the_size_limit_is_inclusive_and_comes_first(ring: Ring) -> None:
    value = main_seal(ring, main_header())
    assert both(ring, value, max_bytes=len(value)) == ("accepted", "accepted")
    assert both(ring, value, max_bytes=len(value) - 1) == ("oversized", "oversized")
    assert both(ring, b"x" * 10, max_bytes=9) == ("oversized", "oversized")


def _compact(envelope: Json) -> str:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


RAW_EDITS: list[tuple[str, Callable[[str], bytes]]] = [
    ("not JSON", lambda s: s[:-1].encode()),
    ("UTF-16", lambda s: s.encode("utf-16")),
    ("UTF-8 byte-order mark", lambda s: b"\xef\xbb\xbf" + s.encode()),
    (
        "repeated header key",
        lambda s: s.replace('"header":{', '"header":{"precedence":"FLASH",').encode(),
    ),
    (
        "repeated top-level key",
        lambda s: s.replace('{"envelope":1', '{"envelope":1,"envelope":1').encode(),
    ),
    ("envelope 1.0", lambda s: s.replace('{"envelope":1', '{"envelope":1.0').encode()),
    ("envelope true", lambda s: s.replace('{"envelope":1', '{"envelope":true').encode()),
    ("lone surrogate", lambda s: s.replace('"case_id":null', '"case_id":"\\ud800"').encode()),
]


@pytest.mark.parametrize(("name", "change"), RAW_EDITS, ids=[e[0] for e in RAW_EDITS])
def test_malformed_bytes_are_refused_alike(
    ring: Ring, name: str, change: Callable[[str], bytes]
) -> None:
    envelope = json.loads(main_seal(ring, main_header()))
    assert both(ring, change(_compact(envelope))) == ("malformed", "malformed")


def _without(path: str) -> Callable[[Json], None]:
    def change(envelope: Json) -> None:
        *parents, last = path.split(".")
        for name in parents:
            envelope = envelope[name]
        del envelope[last]

    return change


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _noncanonical_signature_b64(envelope: Json) -> None:
    """Set a spare bit: 64 bytes are 86 characters (516 bits) then "=="."""
    text = envelope["signature"]["value"]
    spare = B64_ALPHABET[B64_ALPHABET.index(text[85]) ^ 1]
    envelope["signature"]["value"] = text[:85] + spare + "=="


# Envelopes the *sender* signed, so that only parsing (§6 step 1) can refuse them.
SIGNED_EDITS: list[tuple[str, Callable[[Json], object]]] = [
    ("extra envelope field", _set("extra", 1)),
    ("extra header field", _set("header.priority", "high")),
    ("optional header field absent", _without("header.case_id")),
    ("schema_version true", _set("header.schema_version", True)),
    (
        "message_id upper case",
        lambda e: e["header"].update(message_id=e["header"]["message_id"].upper()),
    ),
    (
        "message_id with a trailing newline",
        lambda e: e["header"].update(message_id=e["header"]["message_id"] + "\n"),
    ),
    ("created_at without microseconds", _set("header.created_at", "2026-11-23T06:03:00Z")),
    (
        "created_at with an offset",
        _set("header.created_at", "2026-11-23T06:03:00.202457+00:00"),
    ),
    ("created_at with a lower-case z", _set("header.created_at", "2026-11-23T06:03:00.202457z")),
    ("created_at not a date", _set("header.created_at", "2026-02-30T06:03:00.202457Z")),
    ("recipient repeated", _set("header.recipients", ["DEU", "DEU"])),
    ("recipient with a trailing newline", _set("header.recipients", ["DEU\n"])),
    ("auditor as recipient", _set("header.recipients", ["DEU", "auditor"])),
    ("hub as recipient", _set("header.recipients", ["hub:lyon"])),
    ("case_id empty", _set("header.case_id", "")),
    ("case_id of 129 characters", _set("header.case_id", "🚓" * 129)),
    ("unknown flag", _set("header.flags", ["urgent"])),
    ("flag repeated", _set("header.flags", ["threat-to-life", "threat-to-life"])),
    ("five flags", _set("header.flags", ["threat-to-life"] * 5)),
    ("unknown suite", _set("header.suite", "DHKEM-P256-HKDF-SHA256/HKDF-SHA256/AES-128-GCM")),
    ("no wrapped keys", _set("wrapped_keys", [])),
    ("wrapped keys out of order", lambda e: e["wrapped_keys"].reverse()),
    ("wrapped key repeated", lambda e: e["wrapped_keys"].append(e["wrapped_keys"][-1])),
    ("wrapped key for ccc", lambda e: e["wrapped_keys"][0].update(recipient="ccc")),
    (
        "kid in upper case",
        lambda e: e["wrapped_keys"][0].update(kid=e["wrapped_keys"][0]["kid"].upper()),
    ),
    ("nonce of 16 bytes", _set("nonce", b64e(bytes(16)))),
    ("ciphertext shorter than the tag", _set("ciphertext", b64e(bytes(15)))),
]


@pytest.mark.parametrize(("name", "change"), SIGNED_EDITS, ids=[e[0] for e in SIGNED_EDITS])
def test_a_signed_but_malformed_envelope_is_refused_alike(
    ring: Ring, name: str, change: Callable[[Json], object]
) -> None:
    value = main_seal(ring, main_header(recipients=("DEU", "ITA")))
    spoiled = edited(value, change, signer=ring.private_json("FRA"))
    assert both(ring, spoiled) == ("malformed", "malformed")


# Not re-signed: the digests cover decoded bytes, which a lax decoder would find unchanged.
B64_EDITS: list[tuple[str, Callable[[Json], object]]] = [
    (
        "base64 with a line break",
        lambda e: e.update(ciphertext=e["ciphertext"][:4] + "\n" + e["ciphertext"][4:]),
    ),
    (
        "base64 URL alphabet",
        lambda e: e.update(ciphertext="-_" + e["ciphertext"][2:]),
    ),
    ("signature base64 not canonical", _noncanonical_signature_b64),
]


@pytest.mark.parametrize(("name", "change"), B64_EDITS, ids=[e[0] for e in B64_EDITS])
def test_base64_other_than_the_documented_form_is_refused_alike(
    ring: Ring, name: str, change: Callable[[Json], object]
) -> None:
    spoiled = edited(main_seal(ring, main_header()), change)
    assert both(ring, spoiled) == ("malformed", "malformed")
