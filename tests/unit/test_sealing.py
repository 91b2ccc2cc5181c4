"""Sealing: who can open a message, and what is refused, with which reason (no broker).

The normative text is docs/wire-format.md; section numbers below refer to it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.bodies import AcknowledgementBody, Body, MessageBody
from schemas.errors import (
    BadSignature,
    MalformedMessage,
    NotARecipient,
    OversizedMessage,
    RejectedMessage,
    RejectReason,
    ReplayedMessage,
    StaleMessage,
    TamperedMessage,
    UnknownParticipant,
)
from schemas.header import Language, MessageType, Precedence, RoutingHeader, Suite
from schemas.keys import generate_identity
from schemas.sealing import (
    SIG_LABEL,
    OpenedMessage,
    SealedMessage,
    associated_data,
    body_digest,
    open_sealed,
    parse_envelope,
    seal,
    verify,
)
from tests.unit.keyring import HUBS, small_keyring

TOPIC, KEY = "i247.inbound", b"FRA"
MAX = 1_048_576
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BODY = MessageBody(subject="Request for criminal record check", text="Subject born 1980-02-03")
DEK, NONCE = bytes(range(32)), bytes(range(100, 112))
WIRE_DOC = Path(__file__).parents[2] / "docs" / "wire-format.md"

each_suite = pytest.mark.parametrize("suite", list(Suite), ids=["x25519", "mlkem768-x25519"])


def make_header(**overrides: Any) -> RoutingHeader:
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "sender": "FRA",
        "recipients": ["DEU"],
        "message_type": MessageType.MESSAGE,
        "precedence": Precedence.ROUTINE,
        "created_at": T0,
        "language": Language.EN,
        "trace_id": uuid.uuid4().hex,
    }
    values.update(overrides)
    return RoutingHeader(**values)


def seal_from_fra(
    recipients: list[str],
    suite: Suite = Suite.X25519,
    body: Body = BODY,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> SealedMessage:
    directory, ids = small_keyring()
    header = make_header(recipients=recipients, suite=suite, message_type=body.type)
    return seal(
        header,
        body,
        sender=ids["FRA"],
        directory=directory,
        topic=TOPIC,
        key=KEY,
        random_bytes=random_bytes,
    )


def open_as(
    reader: str, sealed: SealedMessage, *, topic: str = TOPIC, key: bytes = KEY
) -> OpenedMessage:
    directory, ids = small_keyring()
    return open_sealed(sealed, topic=topic, key=key, directory=directory, identity=ids[reader])


def verify_as_hub(sealed: SealedMessage, *, topic: str = TOPIC, key: bytes = KEY) -> RoutingHeader:
    return verify(sealed, topic=topic, key=key, directory=small_keyring()[0])


def holders(sealed: SealedMessage) -> list[str]:
    return [holder for holder, _, _ in sealed.wraps]


def flips(data: bytes) -> Iterator[bytes]:
    """``data`` with one byte inverted, for every position in turn."""
    for index in range(len(data)):
        yield data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def known_randomness(size: int) -> bytes:
    """Stands in for ``os.urandom`` so a test knows the data key and nonce of a seal."""
    return {32: DEK, 12: NONCE}[size]


def signed_by_fra(
    sealed: SealedMessage,
    *,
    ciphertext: bytes | None = None,
    wraps: tuple[tuple[str, str, bytes], ...] | None = None,
) -> SealedMessage:
    """What a misbehaving FRA could publish: other sealed parts, correctly digested and signed."""
    _, ids = small_keyring()
    ciphertext = sealed.ciphertext if ciphertext is None else ciphertext
    wraps = sealed.wraps if wraps is None else wraps
    digest = body_digest(sealed.nonce, ciphertext, list(wraps))
    signature = ids["FRA"].signing_key.sign(SIG_LABEL + sealed.header_digest + digest)
    return dataclasses.replace(
        sealed, ciphertext=ciphertext, wraps=wraps, body_digest=digest, signature=signature
    )


def encrypt_as_sealed(sealed: SealedMessage, plaintext: bytes) -> bytes:
    """Encrypt any plaintext under the data key and associated data of ``sealed``."""
    ad = associated_data(TOPIC, KEY, sealed.canonical_header)
    return AESGCM(DEK).encrypt(NONCE, plaintext, ad)


def envelope_of(sealed: SealedMessage) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sealed.to_bytes())
    return document


def reparse(document: dict[str, Any]) -> SealedMessage:
    return parse_envelope(json.dumps(document).encode(), max_bytes=MAX)


# Who can open a message


@each_suite
@pytest.mark.parametrize("reader", ["DEU", "ITA"])
def test_every_recipient_opens_the_message_and_reads_the_body(suite: Suite, reader: str) -> None:
    sealed = seal_from_fra(["DEU", "ITA"], suite)
    opened = open_as(reader, sealed)
    assert opened.body == BODY
    assert opened.header == sealed.header


@each_suite
def test_an_ncb_that_is_not_a_recipient_cannot_open_it(suite: Suite) -> None:
    sealed = seal_from_fra(["DEU", "ITA"], suite)
    with pytest.raises(NotARecipient, match="ESP") as caught:
        open_as("ESP", sealed)
    assert caught.value.reason == "not-a-recipient"


@each_suite
def test_an_ncb_that_is_not_a_recipient_cannot_unwrap_any_key_with_its_own(suite: Suite) -> None:
    # The strong form of the above: ESP tries every wrap with its KEM key, under either name.
    _, ids = small_keyring()
    sealed = seal_from_fra(["DEU", "ITA"], suite)
    (esp_key,) = (k.key for k in ids["ESP"].kem_keys.values() if k.suite is suite)
    kem = hpke.KEM.X25519 if suite is Suite.X25519 else hpke.KEM.MLKEM768_X25519
    hpke_suite = hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    for holder, _, enc in sealed.wraps:
        for name in (holder, "ESP"):
            info = b"I247-WRAP-v1\x00" + sealed.header.message_id.encode() + b"\x00" + name.encode()
            with pytest.raises(InvalidTag):
                hpke_suite.decrypt(enc, esp_key, info=info)


def test_a_recipient_opens_a_message_also_sealed_for_someone_it_does_not_know() -> None:
    # a notice copied to a team the reader never heard of: its own copy still opens, and
    # the wraps are still checked against every recipient named
    directory, ids = small_keyring()
    team = generate_identity("team:irt-fra-nice-20260701")
    wider = directory.with_identities([team.public()])
    header = make_header(recipients=["DEU", "team:irt-fra-nice-20260701"])
    sealed = seal(
        header, BODY, sender=ids["FRA"], directory=wider, topic=TOPIC, key=KEY,
        random_bytes=os.urandom,
    )  # fmt: skip
    opened = open_sealed(sealed, topic=TOPIC, key=KEY, directory=directory, identity=ids["DEU"])
    assert opened.body == BODY
    dropped = dataclasses.replace(sealed, wraps=tuple(w for w in sealed.wraps if w[0] != "DEU"))
    with pytest.raises(RejectedMessage):
        open_sealed(dropped, topic=TOPIC, key=KEY, directory=directory, identity=ids["DEU"])
    with pytest.raises(UnknownParticipant):  # sealing for someone unknown still fails
        seal(
            header, BODY, sender=ids["FRA"], directory=directory, topic=TOPIC, key=KEY,
            random_bytes=os.urandom,
        )  # fmt: skip


@each_suite
def test_the_sender_can_open_what_it_sent(suite: Suite) -> None:
    assert open_as("FRA", seal_from_fra(["DEU"], suite)).body == BODY


@each_suite
def test_ccc_expands_to_the_three_hubs_and_the_auditor(suite: Suite) -> None:
    sealed = seal_from_fra(["ccc"], suite)
    assert set(holders(sealed)) == {"FRA", *HUBS, "auditor"}
    for reader in [*HUBS, "auditor"]:
        assert open_as(reader, sealed).body == BODY


@each_suite
def test_ncb_to_ncb_traffic_holds_no_key_for_the_hubs_or_the_auditor(suite: Suite) -> None:
    sealed = seal_from_fra(["DEU"], suite)
    assert holders(sealed) == ["DEU", "FRA"]
    for reader in [*HUBS, "auditor"]:
        with pytest.raises(NotARecipient):
            open_as(reader, sealed)


@each_suite
def test_each_key_holder_gets_one_wrap_in_byte_order_under_its_current_kem_key(
    suite: Suite,
) -> None:
    directory, _ = small_keyring()
    sealed = seal_from_fra(["ITA", "ccc", "FRA", "DEU"], suite)
    assert holders(sealed) == sorted({"FRA", "ITA", "DEU", *HUBS, "auditor"})
    enc_length = {Suite.X25519: 32 + 48, Suite.MLKEM768_X25519: 1120 + 48}[suite]
    for holder, kid, enc in sealed.wraps:
        assert kid == directory.get(holder).kem[suite].kid
        assert len(enc) == enc_length


@each_suite
def test_the_record_value_parses_back_to_the_same_sealed_message(suite: Suite) -> None:
    sealed = seal_from_fra(["DEU", "ccc"], suite)
    assert parse_envelope(sealed.to_bytes(), max_bytes=MAX) == sealed


# Participants the directory does not know


def test_sealing_to_a_recipient_missing_from_the_directory_is_refused() -> None:
    with pytest.raises(UnknownParticipant, match="NLD") as caught:
        seal_from_fra(["DEU", "NLD"])
    assert caught.value.reason == "unknown-recipient"
    assert caught.value.participant == "NLD"


def test_a_sender_missing_from_the_directory_is_unknown_to_hubs_and_readers() -> None:
    directory, ids = small_keyring()
    stranger = generate_identity("NLD", [Suite.X25519])
    sealed = seal(
        make_header(sender="NLD"),
        BODY,
        sender=stranger,
        directory=directory,
        topic=TOPIC,
        key=b"NLD",
    )
    with pytest.raises(UnknownParticipant, match="NLD") as caught:
        verify(sealed, topic=TOPIC, key=b"NLD", directory=directory)
    assert caught.value.reason == "unknown-sender"
    with pytest.raises(UnknownParticipant, match="sender 'NLD'"):
        open_sealed(sealed, topic=TOPIC, key=b"NLD", directory=directory, identity=ids["DEU"])


# Tampering in transit: what changed is found from the digests, before the signature


@each_suite
@pytest.mark.parametrize("part", ["ciphertext", "nonce", "wrapped key"])
def test_inverting_any_byte_of_the_sealed_body_is_tampering(suite: Suite, part: str) -> None:
    sealed = seal_from_fra(["DEU"], suite)
    deu = holders(sealed).index("DEU")
    originals = {
        "ciphertext": sealed.ciphertext,
        "nonce": sealed.nonce,
        "wrapped key": sealed.wraps[deu][2],
    }
    for changed in flips(originals[part]):
        if part == "ciphertext":
            tampered = dataclasses.replace(sealed, ciphertext=changed)
        elif part == "nonce":
            tampered = dataclasses.replace(sealed, nonce=changed)
        else:
            wraps = list(sealed.wraps)
            wraps[deu] = ("DEU", wraps[deu][1], changed)
            tampered = dataclasses.replace(sealed, wraps=tuple(wraps))
        with pytest.raises(TamperedMessage, match="sealed body") as caught:
            open_as("DEU", tampered)
        assert caught.value.reason == "tampered"


@pytest.mark.parametrize(
    "change",
    [
        {"holder": "ESP"},  # DEU's wrap relabelled for another NCB
        {"kid": "0123456789abcdef"},
        {"drop": "FRA"},
    ],
    ids=["relabelled", "other-kid", "dropped"],
)
def test_editing_the_list_of_wrapped_keys_is_tampering(change: dict[str, str]) -> None:
    sealed = seal_from_fra(["DEU"])
    wraps = [
        (change.get("holder", h), change.get("kid", k), e) if h == "DEU" else (h, k, e)
        for h, k, e in sealed.wraps
        if h != change.get("drop")
    ]
    with pytest.raises(TamperedMessage, match="sealed body"):
        verify_as_hub(dataclasses.replace(sealed, wraps=tuple(wraps)))


HEADER_CHANGES: dict[str, object] = {
    "message_id": "00000000-0000-4000-8000-000000000000",
    "sender": "ITA",
    "recipients": ["DEU", "ESP"],
    "message_type": "diffusion",
    "precedence": "FLASH",
    "created_at": "2026-11-23T12:00:00.000001Z",
    "language": "fr",
    "case_id": "FRA-2026-0042",
    "correlation_id": "00000000-0000-4000-8000-000000000000",
    "trace_id": "0" * 32,
    "handling": "H3",
    "tlp": "TLP:RED",
    "evaluation": "A1",
    "flags": ["threat-to-life"],
    "suite": Suite.MLKEM768_X25519.value,
}


def test_every_header_field_but_the_version_is_in_the_table_of_changes() -> None:
    assert set(HEADER_CHANGES) == set(RoutingHeader.model_fields) - {"schema_version"}


@pytest.mark.parametrize(("field", "value"), list(HEADER_CHANGES.items()), ids=list(HEADER_CHANGES))
def test_changing_any_header_field_is_tampering_with_the_header(field: str, value: object) -> None:
    envelope = envelope_of(seal_from_fra(["DEU"]))
    assert envelope["header"][field] != value
    envelope["header"][field] = value
    with pytest.raises(TamperedMessage, match="routing header") as caught:
        verify_as_hub(reparse(envelope))
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize(
    ("field", "respelling"),
    [
        ("created_at", "2026-11-23T13:00:00.000000+01:00"),
        ("created_at", "2026-11-23T12:00:00Z"),
        ("case_id", None),  # None: the field is left out and takes its default
    ],
    ids=["other-offset", "no-microseconds", "default-omitted"],
)
def test_a_header_spelled_differently_with_the_same_meaning_is_refused(
    field: str, respelling: str | None
) -> None:
    envelope = envelope_of(seal_from_fra(["DEU"]))
    if respelling is None:
        del envelope["header"][field]
    else:
        envelope["header"][field] = respelling
    # One meaning, one wire form: another spelling is malformed before any key is used.
    with pytest.raises(MalformedMessage):
        reparse(envelope)


@pytest.mark.parametrize(
    ("topic", "key"),
    [("i247.inbox.DEU", KEY), ("i247.inbound.", KEY), (TOPIC, b"DEU"), (TOPIC, b"")],
)
def test_verifying_for_another_topic_or_record_key_is_tampering(topic: str, key: bytes) -> None:
    sealed = seal_from_fra(["DEU"])
    with pytest.raises(TamperedMessage, match="topic or key"):
        verify_as_hub(sealed, topic=topic, key=key)
    with pytest.raises(TamperedMessage):
        open_as("DEU", sealed, topic=topic, key=key)


# Signatures


def test_a_signature_by_another_participant_is_bad_and_names_whose_key_it_is() -> None:
    _, ids = small_keyring()
    sealed = seal_from_fra(["DEU"])
    deu = ids["DEU"]
    forged = dataclasses.replace(
        sealed,
        signature_kid=deu.signing_kid,
        signature=deu.signing_key.sign(SIG_LABEL + sealed.header_digest + sealed.body_digest),
    )
    with pytest.raises(BadSignature, match="belongs to DEU") as caught:
        verify_as_hub(forged)
    assert caught.value.reason == "bad-signature"


def test_a_signature_key_unknown_to_everyone_is_bad() -> None:
    stranger = generate_identity("FRA", [Suite.X25519])  # a second, unregistered FRA key
    sealed = seal_from_fra(["DEU"])
    forged = dataclasses.replace(
        sealed,
        signature_kid=stranger.signing_kid,
        signature=stranger.signing_key.sign(SIG_LABEL + sealed.header_digest + sealed.body_digest),
    )
    with pytest.raises(BadSignature, match="no participant has it"):
        verify_as_hub(forged)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda s: bytes(64),
        lambda s: s[:-1] + bytes([s[-1] ^ 1]),
        lambda s: s[:32],
        lambda s: b"",
        lambda s: s + b"\x00",
    ],
    ids=["zeros", "last-bit", "truncated", "empty", "extended"],
)
def test_corrupt_signature_bytes_over_correct_digests_are_a_bad_signature(
    corrupt: Callable[[bytes], bytes],
) -> None:
    sealed = seal_from_fra(["DEU"])
    broken = dataclasses.replace(sealed, signature=corrupt(sealed.signature))
    with pytest.raises(BadSignature, match="does not verify"):
        verify_as_hub(broken)


def test_recomputing_the_digests_after_a_change_does_not_make_a_forgery() -> None:
    sealed = seal_from_fra(["DEU"])
    ciphertext = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    recomputed = dataclasses.replace(
        sealed,
        ciphertext=ciphertext,
        body_digest=body_digest(sealed.nonce, ciphertext, list(sealed.wraps)),
    )
    with pytest.raises(BadSignature):
        verify_as_hub(recomputed)


# A sender that signs something it should not have: hubs route it, readers refuse it


def test_a_signed_ciphertext_that_does_not_decrypt_is_tampering() -> None:
    sealed = seal_from_fra(["DEU"])
    garbled = signed_by_fra(sealed, ciphertext=bytes(len(sealed.ciphertext)))
    assert verify_as_hub(garbled) == sealed.header
    with pytest.raises(TamperedMessage, match="does not decrypt"):
        open_as("DEU", garbled)


@pytest.mark.parametrize(
    "corrupt",
    [lambda e: bytes(len(e)), lambda e: e[:-1], lambda e: b""],
    ids=["zeros", "truncated", "empty"],
)
def test_a_signed_wrap_that_does_not_open_is_tampering_for_its_holder_only(
    corrupt: Callable[[bytes], bytes],
) -> None:
    sealed = seal_from_fra(["DEU"])
    wraps = tuple((h, k, corrupt(e) if h == "DEU" else e) for h, k, e in sealed.wraps)
    garbled = signed_by_fra(sealed, wraps=wraps)
    with pytest.raises(TamperedMessage, match="does not decrypt"):
        open_as("DEU", garbled)
    assert open_as("FRA", garbled).body == BODY


def test_a_body_whose_type_differs_from_the_header_is_refused() -> None:
    # Sealed as a routine "message", the body is swapped for an "ack" under the same keys.
    sealed = seal_from_fra(["DEU"], random_bytes=known_randomness)
    ack = AcknowledgementBody(acknowledged=str(uuid.uuid4()))
    relabelled = signed_by_fra(
        sealed, ciphertext=encrypt_as_sealed(sealed, ack.model_dump_json().encode())
    )
    with pytest.raises(TamperedMessage, match="ack, header says message") as caught:
        open_as("DEU", relabelled)
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize(
    "plaintext",
    [b'{"type":"message"}', b'{"type":"gossip","text":"x"}', b"not json", b"\xff"],
    ids=["missing-fields", "unknown-type", "not-json", "not-utf8"],
)
def test_a_body_that_is_not_a_valid_body_is_malformed(plaintext: bytes) -> None:
    sealed = seal_from_fra(["DEU"], random_bytes=known_randomness)
    invalid = signed_by_fra(sealed, ciphertext=encrypt_as_sealed(sealed, plaintext))
    with pytest.raises(MalformedMessage, match="body"):
        open_as("DEU", invalid)


# Our own mistakes are not refusals of wire input: they crash loudly


def test_sealing_as_someone_other_than_the_header_sender_is_a_bug() -> None:
    directory, ids = small_keyring()
    with pytest.raises(ValueError, match="not the sealing identity") as caught:
        seal(make_header(), BODY, sender=ids["ITA"], directory=directory, topic=TOPIC, key=KEY)
    assert not isinstance(caught.value, RejectedMessage)


def test_sealing_a_body_of_another_type_than_the_header_is_a_bug() -> None:
    directory, ids = small_keyring()
    header = make_header(message_type=MessageType.DIFFUSION)
    with pytest.raises(ValueError, match="does not match header"):
        seal(header, BODY, sender=ids["FRA"], directory=directory, topic=TOPIC, key=KEY)


def test_sealing_for_a_suite_a_recipient_has_no_key_for_is_a_bug() -> None:
    directory, ids = small_keyring()
    classic_only = generate_identity("NLD", [Suite.X25519])
    directory = directory.with_identities([classic_only.public()])
    header = make_header(recipients=["NLD"], suite=Suite.MLKEM768_X25519)
    with pytest.raises(ValueError, match="NLD has no key for suite"):
        seal(header, BODY, sender=ids["FRA"], directory=directory, topic=TOPIC, key=KEY)


# Parsing the record value (§2, §6 step 1)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"\xff\xfe{}", b"", b"[1, 2]", b'"envelope"', b"{}", b'{"header": "FRA"}'],
    ids=["not-json", "not-utf8", "empty", "array", "string", "empty-object", "header-string"],
)
def test_a_record_that_is_not_an_envelope_object_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_envelope(raw, max_bytes=MAX)
    assert caught.value.reason == "malformed"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


DELETE = object()
ENVELOPE_EDITS: list[tuple[str, tuple[str | int, ...], object]] = [
    *((f"missing-{f}", (f,), DELETE) for f in ("envelope", "wrapped_keys", "nonce")),
    *((f"missing-{f}", (f,), DELETE) for f in ("ciphertext", "digests", "signature")),
    ("missing-header-field", ("header", "trace_id"), DELETE),
    ("missing-wrap-field", ("wrapped_keys", 0, "kid"), DELETE),
    ("missing-digest", ("digests", "body"), DELETE),
    ("extra-field", ("routing",), "lane"),
    ("extra-header-field", ("header", "subject"), "secret in clear"),
    ("extra-wrap-field", ("wrapped_keys", 0, "note"), "x"),
    ("extra-signature-field", ("signature", "alg"), "ed25519"),
    ("envelope-version-2", ("envelope",), 2),
    ("envelope-version-string", ("envelope",), "1"),
    ("header-array", ("header",), []),
    ("header-invalid", ("header", "message_id"), "NOT-A-UUID"),
    ("no-wrapped-keys", ("wrapped_keys",), []),
    ("nonce-not-base64-alphabet", ("nonce",), "@@@@@@@@@@@@@@@@"),
    ("nonce-bad-base64", ("nonce",), "AAAAAAAAAAAAAAA"),
    ("ciphertext-bad-base64", ("ciphertext",), "AAAAA"),
    ("enc-bad-base64", ("wrapped_keys", 0, "enc"), "AAAAA"),
    ("signature-bad-base64", ("signature", "value"), "AAAAA"),
    ("nonce-11-bytes", ("nonce",), b64(bytes(11))),
    ("nonce-13-bytes", ("nonce",), b64(bytes(13))),
    ("digest-uppercase", ("digests", "header"), "AB" * 32),
    ("digest-short", ("digests", "body"), "ab" * 31),
    ("kid-short", ("signature", "kid"), "abc"),
    ("kid-number", ("wrapped_keys", 0, "kid"), 1234567890123456),
]


@pytest.mark.parametrize(
    ("path", "value"), [e[1:] for e in ENVELOPE_EDITS], ids=[e[0] for e in ENVELOPE_EDITS]
)
def test_an_envelope_that_breaks_the_schema_is_malformed(
    path: tuple[str | int, ...], value: object
) -> None:
    envelope = envelope_of(seal_from_fra(["DEU"]))
    parent: Any = envelope
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(MalformedMessage) as caught:
        reparse(envelope)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("anchor", "repeat"),
    [
        ('{"envelope":1,', '"envelope":1,'),
        ('"header":{', '"precedence":"FLASH",'),
        ('"digests":{', '"header":"' + "00" * 32 + '",'),
    ],
    ids=["top-level", "in-header", "in-digests"],
)
def test_a_json_object_that_repeats_a_key_is_malformed(anchor: str, repeat: str) -> None:
    value = seal_from_fra(["DEU"]).to_bytes().decode()
    assert value.count(anchor) == 1
    doubled = value.replace(anchor, anchor + repeat).encode()
    with pytest.raises(MalformedMessage, match="repeats a key"):
        parse_envelope(doubled, max_bytes=MAX)


def test_the_size_limit_is_checked_before_parsing_and_is_inclusive() -> None:
    value = seal_from_fra(["DEU"]).to_bytes()
    assert parse_envelope(value, max_bytes=len(value)).to_bytes() == value
    with pytest.raises(OversizedMessage, match=f"{len(value)} bytes") as caught:
        parse_envelope(value, max_bytes=len(value) - 1)
    assert caught.value.reason == "oversized"
    with pytest.raises(OversizedMessage):
        parse_envelope(b"\xff" * (MAX + 1), max_bytes=MAX)  # not even JSON


# Reason codes (§6)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MalformedMessage("x"), "malformed"),
        (OversizedMessage("x"), "oversized"),
        (UnknownParticipant("NLD", role="sender"), "unknown-sender"),
        (UnknownParticipant("NLD", role="recipient"), "unknown-recipient"),
        (BadSignature("x"), "bad-signature"),
        (TamperedMessage("x"), "tampered"),
        (NotARecipient("x"), "not-a-recipient"),
        (StaleMessage("x"), "stale"),
        (ReplayedMessage("x"), "replayed"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_every_refusal_carries_the_reason_code_the_wire_format_documents(
    error: RejectedMessage, code: str
) -> None:
    assert error.reason == code
    assert f"`{code}`" in WIRE_DOC.read_text(encoding="utf-8")


def test_there_is_no_reason_code_the_wire_format_does_not_document() -> None:
    documented = set(re.findall(r"`([a-z-]+)`", WIRE_DOC.read_text(encoding="utf-8")))
    assert {r.value for r in RejectReason} <= documented


# Properties


recipient_subsets = st.lists(
    st.sampled_from(["DEU", "ITA", "ESP", "ccc"]), min_size=1, max_size=4, unique=True
)
bodies = st.builds(
    MessageBody,
    subject=st.text(min_size=1, max_size=256),
    text=st.text(min_size=1, max_size=2_000),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, recipients=recipient_subsets, suite=st.sampled_from(list(Suite)))
def test_every_key_holder_reads_exactly_what_was_sealed_after_a_trip_through_bytes(
    body: MessageBody, recipients: list[str], suite: Suite
) -> None:
    directory, _ = small_keyring()
    sealed = seal_from_fra(recipients, suite, body)
    received = parse_envelope(sealed.to_bytes(), max_bytes=MAX)
    assert received == sealed
    expected = {"FRA"}
    for recipient in recipients:
        expected.update(directory.key_holders(recipient))
    assert set(holders(received)) == expected
    for reader in expected:
        opened = open_as(reader, received)
        assert opened.header == sealed.header
        assert opened.body == body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies,
    suite=st.sampled_from(list(Suite)),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_a_record_value_changed_in_any_one_byte_is_refused_or_means_exactly_the_same(
    body: MessageBody, suite: Suite, position: int, mask: int
) -> None:
    # The value is compact JSON, so no byte is free whitespace. A change can survive only
    # where base64 has slack (unused low bits before '=' padding): then every decoded part,
    # and so the header and body, is exactly what was sealed.
    sealed = seal_from_fra(["DEU", "ccc"], suite, body)
    value = sealed.to_bytes()
    index = position % len(value)
    mutated = value[:index] + bytes([value[index] ^ mask]) + value[index + 1 :]
    try:
        received = parse_envelope(mutated, max_bytes=MAX)
        opened = open_as("DEU", received)
    except RejectedMessage:
        return
    assert received == sealed
    assert opened.header == sealed.header
    assert opened.body == body


@pytest.mark.parametrize("dropped", ["auditor", "hub:lyon", "FRA"])
def test_a_sender_cannot_leave_a_key_holder_out_even_when_it_signs(dropped: str) -> None:
    """Found by the blind client: a re-signed message to ccc without the auditor's wrap."""
    _, ids = small_keyring()
    sealed = seal_from_fra(["ccc"])
    wraps = tuple(w for w in sealed.wraps if w[0] != dropped)
    digest = body_digest(sealed.nonce, sealed.ciphertext, list(wraps))
    resigned = dataclasses.replace(
        sealed,
        wraps=wraps,
        body_digest=digest,
        signature=ids["FRA"].signing_key.sign(SIG_LABEL + sealed.header_digest + digest),
    )
    with pytest.raises(MalformedMessage, match="left out"):
        verify_as_hub(resigned)
