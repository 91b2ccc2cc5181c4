"""Sealing: who can open, what is refused and why, and how keys sit on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.bodies import MessageBody
from schemas.errors import (
    BadSignature,
    MalformedMessage,
    NotARecipient,
    OversizedMessage,
    RejectedMessage,
    RejectReason,
    TamperedMessage,
    UnknownParticipant,
)
from schemas.header import Suite
from schemas.keys import KeyFileError, generate_identity, init_keyring, key_id, load_identity
from schemas.sealing import SIG_LABEL, SealedMessage, open_sealed, parse_envelope, seal, verify
from tests.unit.factories import make_header, small_keyring

TOPIC, KEY = "i247.inbound", b"FRA"
BODY = MessageBody(subject="Request for criminal record check", text="Subject born 1980-02-03")
MAX = 1 << 20


def sealed_by_fra(recipients: list[str], suite: Suite = Suite.X25519) -> SealedMessage:
    directory, ids = small_keyring()
    header = make_header(recipients=recipients, suite=suite)
    return seal(header, BODY, sender=ids["FRA"], directory=directory, topic=TOPIC, key=KEY)


def open_as(who: str, sealed: SealedMessage) -> MessageBody:
    directory, ids = small_keyring()
    body = open_sealed(sealed, topic=TOPIC, key=KEY, directory=directory, identity=ids[who]).body
    assert isinstance(body, MessageBody)
    return body


@pytest.mark.parametrize("suite", list(Suite))
def test_both_recipients_open_and_a_third_ncb_cannot(suite: Suite) -> None:
    sealed = sealed_by_fra(["DEU", "ITA"], suite)
    assert open_as("DEU", sealed) == BODY
    assert open_as("ITA", sealed) == BODY
    with pytest.raises(NotARecipient):
        open_as("ESP", sealed)


def test_the_sender_can_read_what_it_sent() -> None:
    assert open_as("FRA", sealed_by_fra(["DEU"])) == BODY


def test_ccc_means_every_hub_and_the_auditor() -> None:
    holders = {w[0] for w in sealed_by_fra(["ccc"]).wraps}
    assert holders == {"FRA", "hub:lyon", "hub:buenos-aires", "hub:singapore", "auditor"}


def test_the_auditor_holds_no_key_to_ncb_to_ncb_traffic() -> None:
    sealed = sealed_by_fra(["DEU"])
    assert {w[0] for w in sealed.wraps} == {"FRA", "DEU"}
    with pytest.raises(NotARecipient):
        open_as("auditor", sealed)


def test_a_round_trip_through_bytes_preserves_everything() -> None:
    sealed = sealed_by_fra(["DEU"])
    again = parse_envelope(sealed.to_bytes(), max_bytes=MAX)
    assert again == sealed


def test_a_recipient_missing_from_the_directory_is_unknown() -> None:
    directory, ids = small_keyring()
    with pytest.raises(UnknownParticipant) as caught:
        seal(
            make_header(recipients=["NLD"]),
            BODY,
            sender=ids["FRA"],
            directory=directory,
            topic=TOPIC,
            key=KEY,
        )
    assert caught.value.reason is RejectReason.UNKNOWN_RECIPIENT


def test_a_sender_missing_from_the_directory_is_unknown() -> None:
    directory, _ = small_keyring()
    stranger = generate_identity("NLD")
    sealed = seal(
        make_header(sender="NLD"),
        BODY,
        sender=stranger,
        directory=directory,
        topic=TOPIC,
        key=b"NLD",
    )
    with pytest.raises(UnknownParticipant) as caught:
        verify(sealed, topic=TOPIC, key=b"NLD", directory=directory)
    assert caught.value.reason is RejectReason.UNKNOWN_SENDER


def test_a_signature_by_another_participant_names_whose_key_it_is() -> None:
    _, ids = small_keyring()
    sealed = sealed_by_fra(["DEU"])
    forged = dataclasses.replace(
        sealed,
        signature_kid=ids["DEU"].signing_kid,
        signature=ids["DEU"].signing_key.sign(
            SIG_LABEL + sealed.header_digest + sealed.body_digest
        ),
    )
    with pytest.raises(BadSignature, match="belongs to DEU"):
        open_as("DEU", forged)


def test_corrupt_signature_bytes_are_a_bad_signature() -> None:
    sealed = sealed_by_fra(["DEU"])
    broken = dataclasses.replace(sealed, signature=bytes(64))
    with pytest.raises(BadSignature):
        open_as("DEU", broken)


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_changing_the_body_is_tampering(field: str) -> None:
    sealed = sealed_by_fra(["DEU"])
    original = getattr(sealed, field)
    changed = dataclasses.replace(sealed, **{field: bytes([original[0] ^ 1]) + original[1:]})
    with pytest.raises(TamperedMessage, match="body"):
        open_as("DEU", changed)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("precedence", "FLASH"),
        ("recipients", ["DEU", "ESP"]),
        ("created_at", "2026-11-23T12:00:01.000000Z"),
    ],
)
def test_changing_the_header_is_tampering(field: str, value: object) -> None:
    envelope = json.loads(sealed_by_fra(["DEU"]).to_bytes())
    envelope["header"][field] = value
    changed = parse_envelope(json.dumps(envelope).encode(), max_bytes=MAX)
    with pytest.raises(TamperedMessage, match="header"):
        open_as("DEU", changed)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json", MalformedMessage),
        (b"[1, 2]", MalformedMessage),
        (b'{"header": {}}', MalformedMessage),
        (b'{"a": 1, "a": 2, "header": {}}', MalformedMessage),
        (b" " * (MAX + 1), OversizedMessage),
    ],
)
def test_unparseable_records_are_refused_with_their_reason(
    raw: bytes, error: type[RejectedMessage]
) -> None:
    with pytest.raises(error) as caught:
        parse_envelope(raw, max_bytes=MAX)
    assert caught.value.reason is error.reason


def test_an_extra_field_or_bad_base64_is_malformed() -> None:
    envelope = json.loads(sealed_by_fra(["DEU"]).to_bytes())
    with pytest.raises(MalformedMessage):
        parse_envelope(json.dumps({**envelope, "extra": 1}).encode(), max_bytes=MAX)
    with pytest.raises(MalformedMessage):
        parse_envelope(json.dumps({**envelope, "nonce": "@@@@"}).encode(), max_bytes=MAX)


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1, max_size=300), position=st.integers(min_value=0))
def test_any_single_byte_change_is_refused_or_harmless(text: str, position: int) -> None:
    directory, ids = small_keyring()
    body = MessageBody(subject="s", text=text)
    header = make_header()
    value = seal(
        header, body, sender=ids["FRA"], directory=directory, topic=TOPIC, key=KEY
    ).to_bytes()
    index = position % len(value)
    mutated = value[:index] + bytes([value[index] ^ 0x01]) + value[index + 1 :]
    try:
        opened = open_sealed(
            parse_envelope(mutated, max_bytes=MAX),
            topic=TOPIC,
            key=KEY,
            directory=directory,
            identity=ids["DEU"],
        )
    except RejectedMessage:
        return
    assert opened.header == header
    assert opened.body == body


def test_keyring_files_are_private_and_reused(tmp_path: Path) -> None:
    first = init_keyring(tmp_path, ["FRA", "DEU"])
    path = tmp_path / "private" / "FRA.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    second = init_keyring(tmp_path, ["FRA", "DEU"])
    assert first.to_json() == second.to_json()
    rotated = init_keyring(tmp_path, ["FRA", "DEU"], overwrite=True)
    assert rotated.to_json() != first.to_json()


def test_a_missing_private_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="i247 keys init"):
        load_identity(tmp_path, "FRA")


def test_key_ids_are_sha256_prefixes_of_the_raw_public_key() -> None:
    identity = generate_identity("FRA")
    raw = identity.signing_key.public_key().public_bytes_raw()
    assert identity.signing_kid == key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]
