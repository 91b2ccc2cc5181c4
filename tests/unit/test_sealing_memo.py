"""What a process remembers of envelopes (schemas/sealing_memo.py) never changes an answer.

A remembered parse or signature check must give what the full work gives: the same
message for the same bytes, a refusal for altered bytes, and a refusal for a key the
directory no longer holds (or holds with other public bytes under the same key id).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.bodies import MessageBody
from schemas.errors import BadSignature, MalformedMessage, OversizedMessage, TamperedMessage
from schemas.header import Language, MessageType, Precedence, RoutingHeader
from schemas.keys import Directory, PublicIdentity, generate_identity
from schemas.sealing import SealedMessage, parse_envelope, seal, verify
from schemas.sealing_memo import (
    Memo,
    clear_memos,
    envelopes,
    memo_stats,
    memos_off,
    signatures,
)
from tests.unit.keyring import small_keyring

TOPIC, KEY = "i247.inbound", b"FRA"
MAX = 1_048_576
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BODY = MessageBody(subject="Memo", text="Subject born 1980-02-03")


@pytest.fixture(autouse=True)
def fresh_memos() -> Iterator[None]:
    clear_memos()
    yield
    clear_memos()


def sealed_from_fra(recipients: list[str], **header: Any) -> SealedMessage:
    directory, ids = small_keyring()
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "sender": "FRA",
        "recipients": recipients,
        "message_type": MessageType.MESSAGE,
        "precedence": Precedence.ROUTINE,
        "created_at": T0,
        "language": Language.EN,
        "trace_id": uuid.uuid4().hex,
    }
    values.update(header)
    return seal(
        RoutingHeader(**values),
        BODY,
        sender=ids["FRA"],
        directory=directory,
        topic=TOPIC,
        key=KEY,
    )


def whole_json_dump(sealed: SealedMessage) -> bytes:
    """The record bytes as written before ``to_bytes`` spliced the header in."""
    b64 = base64.b64encode
    envelope = {
        "envelope": 1,
        "header": json.loads(sealed.canonical_header),
        "wrapped_keys": [
            {"recipient": r, "kid": k, "enc": b64(e).decode()} for r, k, e in sealed.wraps
        ],
        "nonce": b64(sealed.nonce).decode(),
        "ciphertext": b64(sealed.ciphertext).decode(),
        "digests": {"header": sealed.header_digest.hex(), "body": sealed.body_digest.hex()},
        "signature": {"kid": sealed.signature_kid, "value": b64(sealed.signature).decode()},
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


@settings(max_examples=25, deadline=None)
@given(case_id=st.text(min_size=1, max_size=40), to_ccc=st.booleans())
def test_spliced_record_bytes_equal_a_whole_json_dump(case_id: str, to_ccc: bool) -> None:
    sealed = sealed_from_fra(["DEU", "ccc"] if to_ccc else ["DEU"], case_id=case_id)
    copy = dataclasses.replace(sealed)  # no remembered bytes: written afresh
    assert copy.raw is None
    assert sealed.raw is not None
    assert copy.to_bytes() == sealed.to_bytes() == whole_json_dump(sealed)


def test_what_seal_remembers_is_what_a_fresh_parse_gives() -> None:
    sealed = sealed_from_fra(["DEU", "ccc"], case_id="Zürich-1")
    raw = sealed.to_bytes()
    assert parse_envelope(raw, max_bytes=MAX) is sealed
    clear_memos()
    fresh = parse_envelope(raw, max_bytes=MAX)
    assert fresh is not sealed
    assert fresh == sealed
    assert fresh.header.created_at == sealed.header.created_at


def test_the_same_bytes_are_parsed_once() -> None:
    raw = sealed_from_fra(["DEU"]).to_bytes()
    clear_memos()
    first = parse_envelope(raw, max_bytes=MAX)
    assert parse_envelope(bytes(raw), max_bytes=MAX) is first
    assert memo_stats()["envelopes"] == {"entries": 1, "hits": 1, "misses": 1}


def test_a_remembered_envelope_is_still_refused_when_over_the_limit() -> None:
    raw = sealed_from_fra(["DEU"]).to_bytes()
    with pytest.raises(OversizedMessage):
        parse_envelope(raw, max_bytes=len(raw) - 1)


def test_refusals_are_not_remembered() -> None:
    raw = sealed_from_fra(["DEU"]).to_bytes()[:-2]
    clear_memos()
    for _ in range(2):
        with pytest.raises(MalformedMessage):
            parse_envelope(raw, max_bytes=MAX)
    assert len(envelopes) == 0


def test_altered_bytes_are_parsed_and_checked_afresh() -> None:
    sealed = sealed_from_fra(["DEU"])
    directory, _ = small_keyring()
    verify(sealed, topic=TOPIC, key=KEY, directory=directory)
    raised = sealed.to_bytes().replace(b'"precedence":"ROUTINE"', b'"precedence":"FLASH"')
    altered = parse_envelope(raised, max_bytes=MAX)
    assert altered.header.precedence is Precedence.FLASH
    with pytest.raises(TamperedMessage):
        verify(altered, topic=TOPIC, key=KEY, directory=directory)


def test_a_signature_remembered_under_one_key_is_refused_under_another() -> None:
    sealed = sealed_from_fra(["DEU"])
    directory, _ = small_keyring()
    verify(sealed, topic=TOPIC, key=KEY, directory=directory)
    impostor = generate_identity("ITA")
    forged = dataclasses.replace(
        sealed, signature=impostor.signing_key.sign(b"I247-SIG-v1\x00" + sealed.header_digest)
    )
    with pytest.raises(BadSignature):
        verify(forged, topic=TOPIC, key=KEY, directory=directory)
    assert len(signatures) == 1  # only the one made by FRA's key


def test_a_rotated_key_is_not_served_from_memory() -> None:
    """FRA rotates its signing key: what its old key signed no longer verifies."""
    sealed = sealed_from_fra(["DEU"])
    directory, _ = small_keyring()
    verify(sealed, topic=TOPIC, key=KEY, directory=directory)  # remembered as valid
    rotated = generate_identity("FRA").public()
    after = directory.with_identities([rotated])
    with pytest.raises(BadSignature, match="not one of FRA's"):
        verify(sealed, topic=TOPIC, key=KEY, directory=after)


def test_other_public_bytes_under_the_same_key_id_miss_the_memo() -> None:
    """A directory entry swapped under the old kid (hand-edited) is checked for real."""
    sealed = sealed_from_fra(["DEU"])
    directory, _ = small_keyring()
    verify(sealed, topic=TOPIC, key=KEY, directory=directory)
    other = generate_identity("FRA").public()
    swapped = PublicIdentity(
        "FRA",
        {sealed.signature_kid: next(iter(other.signing.values()))},
        directory.get("FRA").kem,
    )
    with pytest.raises(BadSignature, match="does not verify"):
        verify(
            sealed,
            topic=TOPIC,
            key=KEY,
            directory=Directory({**directory.identities, "FRA": swapped}),
        )


def test_a_memo_forgets_its_oldest_entry_first() -> None:
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 3)  # a refresh keeps the size
    memo.put("c", 4)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (None, 2, 4)
    with pytest.raises(ValueError, match="at least one"):
        Memo(0)


def test_with_the_memos_off_every_call_does_the_full_work() -> None:
    sealed = sealed_from_fra(["DEU"])
    directory, _ = small_keyring()
    raw = sealed.to_bytes()
    with memos_off():
        assert parse_envelope(raw, max_bytes=MAX) is not sealed
        verify(sealed, topic=TOPIC, key=KEY, directory=directory)
        assert memo_stats()["signatures"]["hits"] == 0
    assert parse_envelope(raw, max_bytes=MAX) is sealed  # on again, as it was
