"""``i247 keys rotate`` and ``i247 keys revoke``: a participant's next key set, published.

The plan is pure (``plan_rotation``, ``plan_revocation``: the current key set, the new
keys and the time in, the signed entry out); the shell reads the key-directory topic,
writes the new private keys into the keys directory, publishes the entry, journals what
was done on the control topic (``key-rotated``, ``key-revoked``, with ``hub`` = operator,
as ``dlq-redriven`` is), and rewrites ``directory.json`` so processes started later agree.

Revoking the *active* key issues a replacement in the same entry: a participant always
has a key to seal for, and nothing is ever sealed for the revoked one. The replacement's
private keys are in the keys directory, for the bureau's operators to install.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from agents.ops.dlq import OPERATOR
from agents.ops.topic_reader import read_to_end
from brokers.clients import make_producer
from brokers.journal_records import journal_record_of
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.header import format_timestamp
from schemas.journal import KeyRevoked, KeyRotated
from schemas.key_directory import (
    ENTRY_FORMAT,
    DirectoryEntry,
    KeyDirectory,
    KeyEntryRefused,
    KeyGeneration,
    KeyState,
    generation_of,
    revoke,
    rotate,
    sign_entry,
)
from schemas.keys import (
    Directory,
    KeyFileError,
    PrivateIdentity,
    generate_identity,
    load_authority,
    load_directory,
    load_identity,
    save_identity,
    write_directory,
)

__all__ = [
    "KEY_REVOKED",
    "KEY_ROTATED",
    "KeyChange",
    "fold_key_records",
    "key_event",
    "plan_revocation",
    "plan_rotation",
    "revoke_key",
    "rotate_key",
    "successor",
]

KEY_ROTATED = "key-rotated"
KEY_REVOKED = "key-revoked"


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A planned change: the signed entry, and the new private keys if any were issued."""

    entry: DirectoryEntry
    identity: PrivateIdentity | None
    old_kid: str
    new_kid: str | None


def successor(identity: PrivateIdentity) -> PrivateIdentity:
    """New signing and KEM keys for ``identity``'s participant; its old KEM keys kept (last),
    so it still opens what was sealed for them, while ``public()`` names the new ones."""
    fresh = generate_identity(identity.participant, {k.suite for k in identity.kem_keys.values()})
    kem = {**identity.kem_keys, **fresh.kem_keys}
    return PrivateIdentity(identity.participant, fresh.signing_key, fresh.signing_kid, kem)


def current_keys(keys: KeyDirectory, base: Directory, participant: str) -> list[KeyGeneration]:
    """The participant's key set: its latest entry, else the one key ``directory.json`` has."""
    entry = keys.entries.get(participant)
    if entry is not None:
        return list(entry.keys)
    identity = base.get(participant, role="participant")
    return [generation_of(identity, kid) for kid in list(identity.signing)[-1:]]


def _entry(
    keys: KeyDirectory, participant: str, generations: list[KeyGeneration], now: datetime
) -> DirectoryEntry:
    return DirectoryEntry(
        format=ENTRY_FORMAT,
        participant=participant,
        sequence=keys.sequence(participant) + 1,
        issued_at=format_timestamp(now),
        keys=generations,
        authority=keys.authority_kid,
    )


def plan_rotation(
    keys: KeyDirectory,
    base: Directory,
    identity: PrivateIdentity,
    fresh: PrivateIdentity,
    *,
    now: datetime,
    grace: timedelta,
) -> KeyChange:
    """Make ``fresh`` the participant's active key; the active one retires for ``grace``."""
    participant = identity.participant
    held = current_keys(keys, base, participant)
    old = next(k.kid for k in held if k.state is KeyState.ACTIVE)
    generation = generation_of(fresh.public(), fresh.signing_kid)
    entry = _entry(keys, participant, rotate(held, generation, now=now, grace=grace), now)
    return KeyChange(entry, fresh, old, fresh.signing_kid)


def plan_revocation(
    keys: KeyDirectory,
    base: Directory,
    participant: str,
    kid: str,
    *,
    reason: str,
    now: datetime,
    replacement: PrivateIdentity | None,
) -> KeyChange:
    """Revoke ``kid``; if it is the active key, ``replacement`` becomes active (required)."""
    held = current_keys(keys, base, participant)
    if any(k.kid == kid and k.state is KeyState.REVOKED for k in held):
        raise KeyEntryRefused(f"{participant}'s key {kid} is already revoked")
    after = revoke(held, kid, now=now, reason=reason)
    was_active = any(k.kid == kid and k.state is KeyState.ACTIVE for k in held)
    if was_active:
        if replacement is None:
            raise KeyEntryRefused(f"{kid} is {participant}'s active key: a replacement is needed")
        after.append(generation_of(replacement.public(), replacement.signing_kid))
    return KeyChange(
        _entry(keys, participant, after, now),
        replacement if was_active else None,
        kid,
        replacement.signing_kid if was_active and replacement else None,
    )


def fold_key_records(keys: KeyDirectory, records: list[ReceivedRecord]) -> KeyDirectory:
    """The topic's records applied in order; refused ones skipped, as every reader does."""
    for record in records:
        try:
            keys = keys.fold(record.value)
        except KeyEntryRefused:
            continue
    return keys


def key_event(
    event: str, change: KeyChange, *, control: str, by: str, now: datetime, reason: str | None
) -> OutboundRecord:
    """The control-journal record of a key change (docs/wire-format.md §13): ``event`` is
    ``KEY_ROTATED`` or ``KEY_REVOKED``."""
    model = {KEY_ROTATED: KeyRotated, KEY_REVOKED: KeyRevoked}[event]
    typed = model(
        hub=OPERATOR,
        time=now,
        participant=change.entry.participant,
        kid=change.old_kid,
        new_kid=change.new_kid,
        sequence=change.entry.sequence,
        reason=reason,
        by=by,
    )
    return journal_record_of(
        typed, topic=control, key=change.entry.participant, event_id=str(uuid.uuid4())
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def _load(settings: Settings, keys_dir: Path) -> tuple[Directory, KeyDirectory]:
    base = load_directory(keys_dir)
    if base.authority is None:
        raise KeyFileError(
            f"{keys_dir / 'directory.json'} names no directory authority; "
            f"run `i247 keys init --dir {keys_dir}` (existing keys are kept)"
        )
    records, _ = await read_to_end(settings, [settings.topics.keys])
    return base, fold_key_records(KeyDirectory(base.authority), records)


async def _publish(
    settings: Settings,
    keys_dir: Path,
    base: Directory,
    keys: KeyDirectory,
    change: KeyChange,
    event: OutboundRecord,
) -> None:
    """New private keys first (a bureau that sees its entry finds them), then the entry and
    the journal event, then ``directory.json``."""
    if change.identity is not None:
        save_identity(keys_dir, change.identity)
    producer = make_producer(settings)
    await producer.start()
    try:
        entry = change.entry
        await producer.send_and_wait(
            settings.topics.keys,
            entry.model_dump_json().encode(),
            key=entry.participant.encode(),
            headers=[("content-type", b"application/json")],
        )
        await producer.send_and_wait(
            event.topic, event.value, key=event.key, headers=list(event.headers)
        )
    finally:
        await producer.stop()
    write_directory(keys_dir, keys.apply(change.entry).overlay(base))


async def rotate_key(
    settings: Settings, participant: str, *, now: datetime, grace: timedelta
) -> KeyChange:
    """Issue ``participant`` a new key, publish it; the old one verifies for ``grace``."""
    keys_dir = Path(settings.keys_dir)
    base, keys = await _load(settings, keys_dir)
    identity = load_identity(keys_dir, participant)
    change = plan_rotation(keys, base, identity, successor(identity), now=now, grace=grace)
    change = _signed(change, keys_dir)
    event = key_event(
        KEY_ROTATED, change, control=settings.topics.control, by=_operator(), now=now, reason=None
    )
    await _publish(settings, keys_dir, base, keys, change, event)
    return change


async def revoke_key(
    settings: Settings, participant: str, kid: str, *, reason: str, now: datetime
) -> KeyChange:
    """Revoke ``participant``'s key ``kid`` (replacing it if active), publish and journal."""
    keys_dir = Path(settings.keys_dir)
    base, keys = await _load(settings, keys_dir)
    identity = load_identity(keys_dir, participant)
    change = plan_revocation(
        keys, base, participant, kid, reason=reason, now=now, replacement=successor(identity)
    )
    change = _signed(change, keys_dir)
    event = key_event(
        KEY_REVOKED, change, control=settings.topics.control, by=_operator(), now=now, reason=reason
    )
    await _publish(settings, keys_dir, base, keys, change, event)
    return change


def _signed(change: KeyChange, keys_dir: Path) -> KeyChange:
    entry = sign_entry(change.entry, load_authority(keys_dir))
    return KeyChange(entry, change.identity, change.old_kid, change.new_kid)
