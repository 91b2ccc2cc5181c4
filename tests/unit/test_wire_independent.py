"""A second, minimal implementation of verify/open/seal, written from docs/wire-format.md.

It uses only the standard library and ``cryptography`` primitives, reads keys from the
files the doc describes (§8), and is checked against ``schemas.sealing`` in both directions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.bodies import MessageBody
from schemas.errors import RejectedMessage
from schemas.header import Suite
from schemas.keys import init_keyring, load_directory, load_identity
from schemas.sealing import open_sealed, parse_envelope, seal, verify
from tests.unit.factories import make_header

# ---- the independent implementation (doc §2-§8) -------------------------------------

X25519_SUITE = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"
HYBRID_SUITE = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
HPKE = {
    X25519_SUITE: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    HYBRID_SUITE: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def canonical(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def ad_of(topic: str, key: bytes, header: dict[str, Any]) -> bytes:
    return b"I247-AD-v1\x00" + lp(topic.encode()) + lp(key) + lp(canonical(header))


def body_digest_of(envelope: dict[str, Any]) -> bytes:
    data = b"I247-BODY-v1\x00" + lp(b64(envelope["nonce"])) + lp(b64(envelope["ciphertext"]))
    data += struct.pack(">I", len(envelope["wrapped_keys"]))
    for wrap in envelope["wrapped_keys"]:
        data += lp(wrap["recipient"].encode()) + lp(wrap["kid"].encode()) + lp(b64(wrap["enc"]))
    return hashlib.sha256(data).digest()


def independent_verify(
    value: bytes, topic: str, key: bytes, directory: dict[str, Any]
) -> dict[str, Any]:
    try:
        envelope = json.loads(value)
        header = envelope["header"]
        sender = header["sender"]
    except (ValueError, KeyError, TypeError):
        raise Refused("malformed") from None
    if sender not in directory["participants"]:
        raise Refused("unknown-sender")
    header_digest = hashlib.sha256(ad_of(topic, key, header)).digest()
    if header_digest.hex() != envelope["digests"]["header"]:
        raise Refused("tampered")
    body_digest = body_digest_of(envelope)
    if body_digest.hex() != envelope["digests"]["body"]:
        raise Refused("tampered")
    keys = {k["kid"]: k["public"] for k in directory["participants"][sender]["signing"]}
    if envelope["signature"]["kid"] not in keys:
        raise Refused("bad-signature")
    public = Ed25519PublicKey.from_public_bytes(b64(keys[envelope["signature"]["kid"]]))
    try:
        public.verify(
            b64(envelope["signature"]["value"]), b"I247-SIG-v1\x00" + header_digest + body_digest
        )
    except InvalidSignature:
        raise Refused("bad-signature") from None
    return dict(header)


def _private_kem(entry: dict[str, Any]) -> Any:
    x = x25519.X25519PrivateKey.from_private_bytes(b64(entry["private"]["x25519"]))
    if entry["suite"] == X25519_SUITE:
        return x
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(b64(entry["private"]["mlkem768"])), x
    )


def _public_kem(entry: dict[str, Any]) -> Any:
    x = x25519.X25519PublicKey.from_public_bytes(b64(entry["public"]["x25519"]))
    if entry["suite"] == X25519_SUITE:
        return x
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(b64(entry["public"]["mlkem768"])), x
    )


def independent_open(
    value: bytes, topic: str, key: bytes, directory: dict[str, Any], private: dict[str, Any]
) -> dict[str, Any]:
    header = independent_verify(value, topic, key, directory)
    envelope = json.loads(value)
    me = private["participant"]
    mine = {k["kid"]: k for k in private["kem"]}
    wrap = next(
        (w for w in envelope["wrapped_keys"] if w["recipient"] == me and w["kid"] in mine), None
    )
    if wrap is None:
        raise Refused("not-a-recipient")
    info = b"I247-WRAP-v1\x00" + header["message_id"].encode() + b"\x00" + me.encode()
    entry = mine[wrap["kid"]]
    try:
        dek = HPKE[entry["suite"]].decrypt(b64(wrap["enc"]), _private_kem(entry), info=info)
        plain = AESGCM(dek).decrypt(
            b64(envelope["nonce"]), b64(envelope["ciphertext"]), ad_of(topic, key, header)
        )
    except (InvalidTag, ValueError):
        raise Refused("tampered") from None
    body: dict[str, Any] = json.loads(plain)
    if body.get("type") != header["message_type"]:
        raise Refused("tampered")
    return body


def independent_seal(
    header: dict[str, Any],
    body: dict[str, Any],
    topic: str,
    key: bytes,
    directory: dict[str, Any],
    private: dict[str, Any],
) -> bytes:
    holders = {header["sender"]}
    for recipient in header["recipients"]:
        if recipient == "ccc":
            holders |= {
                h
                for h in ("hub:buenos-aires", "hub:lyon", "hub:singapore", "auditor")
                if h in directory["participants"]
            }
        else:
            holders.add(recipient)
    ad = ad_of(topic, key, header)
    dek, nonce = os.urandom(32), os.urandom(12)
    ciphertext = AESGCM(dek).encrypt(nonce, json.dumps(body, separators=(",", ":")).encode(), ad)
    wraps = []
    for holder in sorted(holders, key=lambda h: h.encode()):
        entry = [
            k for k in directory["participants"][holder]["kem"] if k["suite"] == header["suite"]
        ][-1]
        info = b"I247-WRAP-v1\x00" + header["message_id"].encode() + b"\x00" + holder.encode()
        enc = HPKE[header["suite"]].encrypt(dek, _public_kem(entry), info=info)
        wraps.append(
            {"recipient": holder, "kid": entry["kid"], "enc": base64.b64encode(enc).decode()}
        )
    envelope: dict[str, Any] = {
        "envelope": 1,
        "header": header,
        "wrapped_keys": wraps,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    header_digest = hashlib.sha256(ad).digest()
    body_digest = body_digest_of(envelope)
    signing = Ed25519PrivateKey.from_private_bytes(b64(private["signing"]["private"]))
    signature = signing.sign(b"I247-SIG-v1\x00" + header_digest + body_digest)
    envelope["digests"] = {"header": header_digest.hex(), "body": body_digest.hex()}
    envelope["signature"] = {
        "kid": private["signing"]["kid"],
        "value": base64.b64encode(signature).decode(),
    }
    return json.dumps(envelope).encode()


# ---- cross-checks against schemas.sealing --------------------------------------------

TOPIC, KEY = "i247.inbound", b"FRA"
BODY = MessageBody(
    subject="Wanted person located", text="Sighted in Zürich 🚓, café near the station"
)
PEOPLE = ["FRA", "DEU", "ITA", "hub:lyon", "hub:buenos-aires", "hub:singapore", "auditor"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wire-keys")
    init_keyring(path, PEOPLE)
    return path


def directory_json(keys: Path) -> dict[str, Any]:
    return json.loads((keys / "directory.json").read_text())  # type: ignore[no-any-return]


def private_json(keys: Path, who: str) -> dict[str, Any]:
    return json.loads((keys / "private" / f"{who.replace(':', '_')}.json").read_text())  # type: ignore[no-any-return]


def main_seal(keys: Path, suite: Suite, recipients: list[str], **header: Any) -> bytes:
    h = make_header(recipients=recipients, suite=suite, **header)
    sealed = seal(
        h,
        BODY,
        sender=load_identity(keys, "FRA"),
        directory=load_directory(keys),
        topic=TOPIC,
        key=KEY,
    )
    return sealed.to_bytes()


SUITES = [Suite.X25519, Suite.MLKEM768_X25519]


@pytest.mark.parametrize("suite", SUITES)
def test_main_seal_opens_independently_for_each_recipient(keys: Path, suite: Suite) -> None:
    value = main_seal(keys, suite, ["DEU", "ccc"], case_id="Zürich-🚓-1")
    for reader in ("DEU", "hub:lyon", "auditor", "FRA"):
        body = independent_open(value, TOPIC, KEY, directory_json(keys), private_json(keys, reader))
        assert body == json.loads(BODY.model_dump_json())
    with pytest.raises(Refused, match="not-a-recipient"):
        independent_open(value, TOPIC, KEY, directory_json(keys), private_json(keys, "ITA"))


@pytest.mark.parametrize("suite", SUITES)
def test_independent_seal_opens_in_the_main_implementation(keys: Path, suite: Suite) -> None:
    header = json.loads(make_header(recipients=["DEU"], suite=suite).model_dump_json())
    body = json.loads(BODY.model_dump_json())
    value = independent_seal(
        header, body, TOPIC, KEY, directory_json(keys), private_json(keys, "FRA")
    )
    sealed = parse_envelope(value, max_bytes=1 << 20)
    opened = open_sealed(
        sealed,
        topic=TOPIC,
        key=KEY,
        directory=load_directory(keys),
        identity=load_identity(keys, "DEU"),
    )
    assert opened.body == BODY
    assert opened.header.message_id == header["message_id"]


def test_digests_agree_byte_for_byte(keys: Path) -> None:
    value = main_seal(keys, Suite.X25519, ["DEU"], case_id="Zürich-🚓-1")
    envelope = json.loads(value)
    assert (
        hashlib.sha256(ad_of(TOPIC, KEY, envelope["header"])).hexdigest()
        == envelope["digests"]["header"]
    )
    assert body_digest_of(envelope).hex() == envelope["digests"]["body"]
    assert b"\\u00fc" in canonical(envelope["header"])  # ü escaped, as §3.1 says
    assert b"\\ud83d\\ude93" in canonical(envelope["header"])  # the police car as a surrogate pair


def _main_reason(value: bytes, keys: Path, topic: str = TOPIC, key: bytes = KEY) -> str:
    try:
        verify(
            parse_envelope(value, max_bytes=1 << 20),
            topic=topic,
            key=key,
            directory=load_directory(keys),
        )
    except RejectedMessage as refusal:
        return refusal.reason.value
    return "accepted"


def _independent_reason(value: bytes, keys: Path, topic: str = TOPIC, key: bytes = KEY) -> str:
    try:
        independent_verify(value, topic, key, directory_json(keys))
    except Refused as refusal:
        return refusal.reason
    return "accepted"


def _edit(value: bytes, change: Any) -> bytes:
    envelope = json.loads(value)
    change(envelope)
    return json.dumps(envelope).encode()


def _flip_ciphertext(envelope: dict[str, Any]) -> None:
    raw = bytearray(b64(envelope["ciphertext"]))
    raw[0] ^= 1
    envelope["ciphertext"] = base64.b64encode(bytes(raw)).decode()


def _raise_precedence(envelope: dict[str, Any]) -> None:
    envelope["header"]["precedence"] = "FLASH"


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("untouched", lambda e: None, "accepted"),
        ("ciphertext bit flipped", _flip_ciphertext, "tampered"),
        ("header precedence raised", _raise_precedence, "tampered"),
    ],
)
def test_both_implementations_refuse_alike(
    keys: Path, name: str, change: Any, expected: str
) -> None:
    value = _edit(main_seal(keys, Suite.X25519, ["DEU"]), change)
    assert _main_reason(value, keys) == _independent_reason(value, keys) == expected


def test_a_signature_by_another_participant_is_refused_alike(keys: Path) -> None:
    value = main_seal(keys, Suite.X25519, ["DEU"])
    envelope = json.loads(value)
    deu = private_json(keys, "DEU")
    digests = bytes.fromhex(envelope["digests"]["header"]) + bytes.fromhex(
        envelope["digests"]["body"]
    )
    signature = Ed25519PrivateKey.from_private_bytes(b64(deu["signing"]["private"])).sign(
        b"I247-SIG-v1\x00" + digests
    )
    envelope["signature"] = {
        "kid": deu["signing"]["kid"],
        "value": base64.b64encode(signature).decode(),
    }
    forged = json.dumps(envelope).encode()
    assert _main_reason(forged, keys) == _independent_reason(forged, keys) == "bad-signature"


@pytest.mark.parametrize(("topic", "key"), [("i247.elsewhere", KEY), (TOPIC, b"DEU")])
def test_a_record_moved_to_another_topic_or_key_is_refused_alike(
    keys: Path, topic: str, key: bytes
) -> None:
    value = main_seal(keys, Suite.X25519, ["DEU"])
    assert (
        _main_reason(value, keys, topic, key)
        == _independent_reason(value, keys, topic, key)
        == "tampered"
    )


def test_message_ids_are_fresh_uuids() -> None:
    assert uuid.UUID(make_header().message_id).version == 4
