"""The key directory's state machine: rotation, revocation, refused entries; and what
sealing, ``verify`` and intake make of it. Pure: no broker."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.cli import main
from agents.ncb.adapter import NcbAdapter
from agents.ops.key_lifecycle import plan_revocation, plan_rotation, successor
from agents.sim.accounting import Accounting
from agents.sim.simulator import Simulator
from agents.sim.traffic import TrafficMix
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import MessageBody
from schemas.errors import KeyExpired, KeyRevoked, RejectReason
from schemas.key_directory import (
    DirectoryEntry,
    KeyDirectory,
    KeyEntryRefused,
    KeyState,
    KeyStatus,
    sign_entry,
)
from schemas.keys import Directory, PrivateIdentity
from schemas.sealing import parse_envelope, verify
from schemas.sealing_memo import signatures
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages
from streams.core.intake import IntakePolicy, Refused, admit
from streams.core.roster import DutyRoster
from streams.desks.ccc_desk import seal_from_hub
from tests.unit.factories import T0, small_keyring

TOPICS = TopicCatalog("i247")
AUTHORITY = Ed25519PrivateKey.generate()
GRACE = timedelta(minutes=10)
BODY = MessageBody(subject="Key test", text="signed and sealed")


def world() -> tuple[Directory, dict[str, PrivateIdentity], KeyDirectory]:
    directory, ids = small_keyring()
    directory = Directory(directory.identities, authority=AUTHORITY.public_key())
    return directory, ids, KeyDirectory(directory.authority)


def rotated(
    keys: KeyDirectory, base: Directory, identity: PrivateIdentity
) -> tuple[KeyDirectory, PrivateIdentity, DirectoryEntry]:
    fresh = successor(identity)
    change = plan_rotation(keys, base, identity, fresh, now=T0, grace=GRACE)
    entry = sign_entry(change.entry, AUTHORITY)
    return keys.apply(entry), fresh, entry


def sent(identity: PrivateIdentity, directory: Directory, to: str = "DEU") -> OutboundRecord:
    adapter = NcbAdapter(identity, directory, TOPICS)
    return adapter.compose([to], BODY, now=T0, random_bytes=os.urandom)[1]


def check(record: OutboundRecord, directory: Directory, at: object = None) -> None:
    sealed = parse_envelope(record.value, max_bytes=1 << 20)
    verify(sealed, topic=record.topic, key=record.key or b"", directory=directory, at=at)  # type: ignore[arg-type]


def test_a_rotation_activates_the_new_key_and_retires_the_old_for_the_grace_period() -> None:
    base, ids, keys = world()
    old = ids["FRA"]
    keys, new, entry = rotated(keys, base, old)
    assert [(k.kid, k.state) for k in entry.keys] == [
        (old.signing_kid, KeyState.RETIRING),
        (new.signing_kid, KeyState.ACTIVE),
    ]
    assert keys.sealing_key_for("FRA") == new.signing_kid
    assert keys.status("FRA", new.signing_kid, T0) is KeyStatus.ACTIVE
    assert keys.status("FRA", old.signing_kid, T0 + GRACE) is KeyStatus.IN_GRACE
    assert keys.status("FRA", old.signing_kid, T0 + GRACE + timedelta(microseconds=1)) is (
        KeyStatus.EXPIRED
    )
    assert not keys.may_verify("FRA", old.signing_kid, T0 + 2 * GRACE)
    assert keys.status("DEU", ids["DEU"].signing_kid, T0) is KeyStatus.UNKNOWN


def test_after_a_rotation_peers_seal_for_the_new_key_and_both_keys_verify_in_grace() -> None:
    base, ids, keys = world()
    keys, new, _ = rotated(keys, base, ids["FRA"])
    directory = keys.overlay(base)
    from_deu = parse_envelope(sent(ids["DEU"], directory, "FRA").value, max_bytes=1 << 20)
    (wrap,) = [kid for holder, kid, _ in from_deu.wraps if holder == "FRA"]
    assert wrap == new.public().kem[from_deu.header.suite].kid  # never the retired KEM key
    check(sent(ids["FRA"], directory), directory, T0 + GRACE)  # the old key, in grace
    check(sent(new, directory), directory, T0 + 3 * GRACE)  # the new key, any time
    with pytest.raises(KeyExpired) as expired:
        check(sent(ids["FRA"], directory), directory, T0 + GRACE + timedelta(seconds=1))
    assert expired.value.reason is RejectReason.KEY_EXPIRED


def test_a_revoked_key_is_refused_even_when_its_signature_was_verified_before() -> None:
    base, ids, keys = world()
    fra = ids["FRA"]
    record = sent(fra, base)
    check(record, base, T0)  # verified once: the signature memo now remembers it
    assert len(signatures) > 0
    change = plan_revocation(
        keys,
        base,
        "FRA",
        fra.signing_kid,
        reason="laptop stolen",
        now=T0,
        replacement=successor(fra),
    )
    keys = keys.apply(sign_entry(change.entry, AUTHORITY))
    directory = keys.overlay(base)
    with pytest.raises(KeyRevoked) as revoked:
        check(record, directory, None)  # readers without a clock refuse it too
    assert revoked.value.reason is RejectReason.KEY_REVOKED
    assert "laptop stolen" in str(revoked.value)
    assert keys.sealing_key_for("FRA") == change.new_kid  # replaced: FRA can still be reached
    from_deu = parse_envelope(sent(ids["DEU"], directory, "FRA").value, max_bytes=1 << 20)
    assert fra.signing_kid not in {kid for _, kid, _ in from_deu.wraps}
    assert not set(fra.kem_keys) & {kid for _, kid, _ in from_deu.wraps}


def test_intake_dead_letters_a_revoked_key_as_key_revoked() -> None:
    base, ids, keys = world()
    fra = ids["FRA"]
    keys, _, _ = rotated(keys, base, fra)
    change = plan_revocation(
        keys, base, "FRA", fra.signing_kid, reason="compromised", now=T0, replacement=None
    )
    directory = keys.apply(sign_entry(change.entry, AUTHORITY)).overlay(base)
    record = sent(fra, base)
    outcome = admit(
        ReceivedRecord(record.topic, 0, 0, 0, record.key, record.value, record.headers),
        now=T0,
        directory=directory,
        seen=SeenMessages(),
        roster=DutyRoster(),
        topics=TOPICS,
        policy=IntakePolicy(),
    )
    assert isinstance(outcome, Refused)
    assert outcome.reason is RejectReason.KEY_REVOKED


def _tamper(entry: DirectoryEntry) -> DirectoryEntry:
    return entry.model_copy(update={"issued_at": "2030-01-01T00:00:00.000000Z"})


def _other_authority(entry: DirectoryEntry) -> DirectoryEntry:
    return sign_entry(entry, Ed25519PrivateKey.generate())


def _two_active(entry: DirectoryEntry) -> DirectoryEntry:
    keys = [
        k.model_copy(update={"state": KeyState.ACTIVE, "verify_until": None}) for k in entry.keys
    ]
    return sign_entry(entry.model_copy(update={"keys": keys}), AUTHORITY)


def _wrong_kid(entry: DirectoryEntry) -> DirectoryEntry:
    last = entry.keys[-1].model_copy(update={"kid": "0" * 16})
    return sign_entry(entry.model_copy(update={"keys": [*entry.keys[:-1], last]}), AUTHORITY)


def _same_sequence(entry: DirectoryEntry) -> DirectoryEntry:
    return sign_entry(entry.model_copy(update={"sequence": entry.sequence - 1}), AUTHORITY)


REFUSALS: dict[str, tuple[Callable[[DirectoryEntry], DirectoryEntry], str]] = {
    "tampered after signing": (_tamper, "bad authority signature"),
    "signed by another key": (_other_authority, "not the directory authority"),
    "two active keys": (_two_active, "one active key"),
    "a kid that is not its key": (_wrong_kid, "does not match"),
    "replayed sequence": (_same_sequence, "not after"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_entry_is_refused_and_changes_nothing(case: str) -> None:
    base, ids, keys = world()
    keys, _, _ = rotated(keys, base, ids["FRA"])
    _, _, second = rotated(keys, base, successor(ids["FRA"]))
    spoil, says = REFUSALS[case]
    with pytest.raises(KeyEntryRefused, match=says):
        keys.apply(spoil(second))
    assert keys.sequence("FRA") == 1


def test_a_revocation_is_final() -> None:
    base, ids, keys = world()
    fra = ids["FRA"]
    keys, new, _ = rotated(keys, base, fra)
    revocation = plan_revocation(
        keys, base, "FRA", fra.signing_kid, reason="lost", now=T0, replacement=None
    )
    keys = keys.apply(sign_entry(revocation.entry, AUTHORITY))
    held = list(revocation.entry.keys)
    for spoiled in (
        [
            k.model_copy(update={"state": KeyState.RETIRING, "verify_until": k.revoked_at})
            if k.kid == fra.signing_kid
            else k
            for k in held
        ],  # reinstated
        [k for k in held if k.kid != fra.signing_kid],  # dropped
    ):
        entry = revocation.entry.model_copy(update={"sequence": 3, "keys": spoiled})
        with pytest.raises(KeyEntryRefused, match="final"):
            keys.apply(sign_entry(entry, AUTHORITY))
    assert keys.status("FRA", fra.signing_kid, T0) is KeyStatus.REVOKED
    assert keys.status("FRA", new.signing_kid, T0) is KeyStatus.ACTIVE


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_any_history_keeps_one_live_active_key_and_refuses_its_own_past(moves: list[bool]) -> None:
    base, ids, keys = world()
    identity = ids["ITA"]
    entries: list[DirectoryEntry] = []
    for revoke_active in moves:
        fresh = successor(identity)
        if revoke_active:
            kid = keys.sealing_key_for("ITA") or identity.signing_kid
            change = plan_revocation(
                keys, base, "ITA", kid, reason="drill", now=T0, replacement=fresh
            )
        else:
            change = plan_rotation(keys, base, identity, fresh, now=T0, grace=GRACE)
        entry = sign_entry(change.entry, AUTHORITY)
        keys = keys.apply(entry)
        entries.append(entry)
        identity = fresh
        active = keys.sealing_key_for("ITA")
        assert active == identity.signing_kid
        assert keys.may_verify("ITA", active, T0 + 10 * GRACE)
        directory = keys.overlay(base)
        assert not set(directory.revoked) & set(directory.identities["ITA"].signing)
    for old in entries:  # every entry already applied, including the last, is refused
        with pytest.raises(KeyEntryRefused, match="not after"):
            keys.apply(old)


def test_the_commands_need_a_broker_and_a_key_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("I247_BOOTSTRAP", raising=False)
    assert main(["keys", "rotate", "--participant", "FRA"]) == 2
    assert "I247_BOOTSTRAP" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["keys", "revoke", "--participant", "FRA", "--key-id", "K", "--reason", "x"])
    assert usage.value.code == 2
    assert "not a key id" in capsys.readouterr().err


def test_a_desk_wraps_data_keys_only_for_the_current_key_after_a_revocation() -> None:
    base, ids, keys = world()
    fra = ids["FRA"]
    change = plan_revocation(
        keys, base, "FRA", fra.signing_kid, reason="seized", now=T0, replacement=successor(fra)
    )
    directory = keys.apply(sign_entry(change.entry, AUTHORITY)).overlay(base)
    _, records = seal_from_hub(
        BODY,
        ["FRA", "DEU"],
        hub=ids["hub:lyon"],
        directory=directory,
        topics=TOPICS,
        now=T0,
        random_bytes=os.urandom,
    )
    wrapped = {
        (holder, kid)
        for record in records
        for holder, kid, _ in parse_envelope(record.value, max_bytes=1 << 20).wraps
    }
    assert change.identity is not None
    fra_kids = {kid for holder, kid in wrapped if holder == "FRA"}
    assert fra_kids == {k.kid for k in change.identity.public().kem.values()} & fra_kids
    assert fra_kids
    assert not fra_kids & set(fra.kem_keys)
    assert set(directory.revoked) >= set(fra.kem_keys) | {fra.signing_kid}


def test_the_simulators_bureaus_seal_for_a_peers_rotated_key_once_the_entry_is_read() -> None:
    base, ids, keys = world()
    simulator = Simulator(
        topics=TOPICS,
        directory=base,
        identities=ids,
        mix=TrafficMix({"europe": ["DEU", "ESP", "FRA", "ITA"]}, {}, seed=1),
        producer=cast(AIOKafkaProducer, None),  # nothing is sent here
        books=Accounting(),
        max_bytes=IntakePolicy().max_bytes,
        freshness=IntakePolicy().freshness,
        clock=lambda: T0,
    )
    _, new, entry = rotated(keys, base, ids["FRA"])
    value = entry.model_dump_json().encode()
    simulator.fold_key_entry(ReceivedRecord(TOPICS.keys, 0, 0, 0, b"FRA", value, ()))
    simulator.fold_key_entry(ReceivedRecord(TOPICS.keys, 0, 1, 0, b"FRA", value, ()))  # refused
    deu = simulator.adapters["DEU"]
    record = deu.compose(["FRA"], BODY, now=T0, random_bytes=os.urandom)[1]
    wraps = parse_envelope(record.value, max_bytes=1 << 20).wraps
    assert {kid for holder, kid, _ in wraps if holder == "FRA"} <= {
        k.kid for k in new.public().kem.values()
    }
    assert new.signing_kid in simulator.directory.get("FRA").signing
