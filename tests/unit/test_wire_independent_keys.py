"""A second client of docs/wire-format.md §8.1 (the key directory topic), from the document.

The first half reads and writes directory entries with the standard library and
``cryptography`` only (the canonical JSON of §3.1 is the independent one of
``test_wire_independent``). The second half checks it against ``schemas.key_directory``
in both directions. Where the document leaves a choice open, the reading is marked READING.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.unit.test_wire_independent import canonical_header as canonical_json

# ======================= the independent client (docs/wire-format.md §8.1) =============

Json = dict[str, Any]
LABEL = b"I247-KEYS-v1\x00"
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
STATES = {"active", "retiring", "revoked"}
X25519 = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"  # §4.2's suite name


class Refused(Exception):
    """The entry is not applied (§8.1: refused entries are skipped)."""


def kid_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signed_bytes(entry: Json) -> bytes:
    return LABEL + canonical_json({k: v for k, v in entry.items() if k != "signature"})


def write_entry(
    participant: str, sequence: int, keys: list[Json], authority: Ed25519PrivateKey
) -> bytes:
    """A signed entry as §8.1 shows it."""
    entry: Json = {
        "format": "i247-keys/1",
        "participant": participant,
        "sequence": sequence,
        "issued_at": stamp(datetime(2026, 12, 4, 18, 0, tzinfo=UTC)),
        "keys": keys,
        "authority": kid_of(authority.public_key().public_bytes_raw()),
    }
    entry["signature"] = b64(authority.sign(signed_bytes(entry)))
    return json.dumps(entry).encode()


def generation(state: str, *, until: str | None = None, revoked: str | None = None) -> Json:
    signing = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    kem = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    return {
        "kid": kid_of(signing),
        "state": state,
        "signing": b64(signing),
        "kem": [{"kid": kid_of(kem), "suite": X25519, "public": {"x25519": b64(kem)}}],
        "verify_until": until,
        "revoked_at": revoked,
        "reason": "lost" if revoked else None,
    }


def read_entry(value: bytes, authority: bytes, last: Json | None) -> Json:
    """Apply one record value after ``last`` (the participant's entry applied before)."""
    entry = json.loads(value)
    if entry.get("format") != "i247-keys/1" or entry.get("authority") != kid_of(authority):
        raise Refused("format or authority")
    try:
        Ed25519PublicKey.from_public_bytes(authority).verify(
            base64.b64decode(entry["signature"]), signed_bytes(entry)
        )
    except InvalidSignature:
        raise Refused("signature") from None
    if last is not None and entry["sequence"] <= last["sequence"]:
        raise Refused("sequence")
    if [k["state"] for k in entry["keys"]].count("active") != 1:
        raise Refused("one active")
    for key in entry["keys"]:
        if key["state"] not in STATES or kid_of(base64.b64decode(key["signing"])) != key["kid"]:
            raise Refused("kid")
        for kem in key["kem"]:  # §8: the hybrid's kid is over ML-KEM-768 || X25519
            parts = [kem["public"][n] for n in ("mlkem768", "x25519") if n in kem["public"]]
            if kid_of(b"".join(base64.b64decode(p) for p in parts)) != kem["kid"]:
                raise Refused("kem kid")
        if key["state"] == "retiring" and not TIME.fullmatch(key["verify_until"] or ""):
            raise Refused("verify_until")
    if last is not None:
        before = {k["kid"] for k in last["keys"] if k["state"] == "revoked"}
        if not before <= {k["kid"] for k in entry["keys"] if k["state"] == "revoked"}:
            raise Refused("revocation is final")
    return dict(entry)


def may_verify(entry: Json, kid: str, at: datetime) -> bool:
    for key in entry["keys"]:
        if key["kid"] == kid:
            if key["state"] == "retiring":
                return at <= when(key["verify_until"])
            return bool(key["state"] == "active")
    return False


# ======================= checked against the project =================================

from schemas.key_directory import (  # noqa: E402
    DirectoryEntry,
    KeyDirectory,
    KeyEntryRefused,
    generation_of,
    revoke,
    rotate,
    sign_entry,
)
from schemas.keys import generate_identity  # noqa: E402

AUTHORITY = Ed25519PrivateKey.generate()
RAW = AUTHORITY.public_key().public_bytes_raw()
T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
TIMES = [T0, T0 + timedelta(minutes=9), T0 + timedelta(minutes=11)]


def project_entries() -> list[DirectoryEntry]:
    """Rotation then revocation of the first key, as ``i247 keys`` makes them."""
    first, second = generate_identity("FRA"), generate_identity("FRA")
    one = [generation_of(first.public(), first.signing_kid)]
    two = rotate(
        one, generation_of(second.public(), second.signing_kid), now=T0, grace=timedelta(minutes=10)
    )
    three = revoke(two, first.signing_kid, now=T0, reason="lost")
    base: dict[str, Any] = {
        "format": "i247-keys/1",
        "participant": "FRA",
        "issued_at": stamp(T0),
        "authority": "0" * 16,
    }
    return [
        sign_entry(DirectoryEntry(**base, sequence=n, keys=keys), AUTHORITY)
        for n, keys in enumerate((one, two, three), start=1)
    ]


def test_entries_the_project_writes_read_the_same_independently() -> None:
    ours = KeyDirectory(AUTHORITY.public_key())
    last: Json | None = None
    for entry in project_entries():
        value = entry.model_dump_json().encode()
        last = read_entry(value, RAW, last)
        ours = ours.fold(value)
        for key in entry.keys:
            for at in TIMES:
                assert may_verify(last, key.kid, at) == ours.may_verify("FRA", key.kid, at)


def test_entries_written_independently_are_applied_by_the_project() -> None:
    old = generation("retiring", until=stamp(T0 + timedelta(minutes=10)))
    new = generation("active")
    value = write_entry("DEU", 1, [old, new], AUTHORITY)
    ours = KeyDirectory(AUTHORITY.public_key()).fold(value)
    theirs = read_entry(value, RAW, None)
    assert ours.sealing_key_for("DEU") == new["kid"]
    for kid in (old["kid"], new["kid"], "f" * 16):
        for at in TIMES:
            assert ours.may_verify("DEU", kid, at) == may_verify(theirs, kid, at)
    revoked = dict(old, state="revoked", verify_until=None, revoked_at=stamp(T0), reason="x")
    later = write_entry("DEU", 2, [revoked, new], AUTHORITY)
    ours = ours.fold(later)
    assert not ours.may_verify("DEU", old["kid"], T0)
    assert not may_verify(read_entry(later, RAW, theirs), old["kid"], T0)


@pytest.mark.parametrize(
    "spoil",
    ["tampered", "replayed", "two active", "reinstated", "other authority"],
)
def test_both_refuse_the_same_bad_entries(spoil: str) -> None:
    old, new = generation("revoked", revoked=stamp(T0)), generation("active")
    first = write_entry("ITA", 1, [old, new], AUTHORITY)
    bad = {
        "tampered": first.replace(b'"ITA"', b'"ESP"'),
        "replayed": first,
        "two active": write_entry("ITA", 2, [dict(old, state="active"), new], AUTHORITY),
        "reinstated": write_entry(
            "ITA", 2, [dict(old, state="retiring", verify_until=stamp(T0)), new], AUTHORITY
        ),
        "other authority": write_entry("ITA", 2, [old, new], Ed25519PrivateKey.generate()),
    }[spoil]
    ours = KeyDirectory(AUTHORITY.public_key()).fold(first)
    theirs = read_entry(first, RAW, None)
    with pytest.raises(Refused):
        read_entry(bad, RAW, theirs)
    with pytest.raises(KeyEntryRefused):
        ours.fold(bad)
