"""The key directory as a topic: signed entries that rotate and revoke participants' keys.

Theory of operation (normative text: docs/wire-format.md, "Key directory"):

* the compacted topic ``i247.keys`` holds, keyed by participant, that participant's whole
  key set: every *generation* (one Ed25519 signing key and its KEM keys, named by the
  signing key's id) with its state: ``active`` (signs and is sealed for), ``retiring``
  (rotated out: still verifies until ``verify_until``, never sealed for again) or
  ``revoked`` (never verifies again, from ``revoked_at``, with a reason);
* each entry carries a per-participant ``sequence`` and is signed by the directory
  authority (a CCC key in the keys directory), so a bureau cannot publish a key for
  another and a replayed or reordered old entry is refused;
* ``KeyDirectory`` is the pure state machine every hub and bureau runs over the topic:
  ``apply`` an entry (or ``KeyEntryRefused``), ``status``/``may_verify`` a key at a time,
  ``sealing_key_for`` a participant, and ``overlay`` the result on a ``Directory`` so that
  sealing and ``verify`` use it. Only the latest entry per participant matters: compaction
  keeps exactly what a reader needs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.header import Suite, format_timestamp
from schemas.keys import Directory, KemPublicKey, PublicIdentity, RevokedKey, key_id
from schemas.sealing import canonical_json

__all__ = [
    "DEFAULT_GRACE",
    "ENTRY_FORMAT",
    "ENTRY_LABEL",
    "DirectoryEntry",
    "KeyDirectory",
    "KeyEntryRefused",
    "KeyGeneration",
    "KeyState",
    "KeyStatus",
    "generation_of",
    "key_directory_for",
    "revoke",
    "rotate",
    "sign_entry",
]

ENTRY_FORMAT: Final = "i247-keys/1"
ENTRY_LABEL = b"I247-KEYS-v1\x00"
DEFAULT_GRACE = timedelta(hours=24)
"""How long a rotated-out key still verifies (``i247 keys rotate --grace-seconds``)."""

Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=8192)]
Time = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]


class KeyEntryRefused(ValueError):
    """A directory entry a reader will not apply; the message says why (and it is skipped)."""


class KeyState(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"
    REVOKED = "revoked"


class KeyStatus(StrEnum):
    """What a reader may do with one key id at one time."""

    ACTIVE = "active"
    IN_GRACE = "in-grace"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class KemKey(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kid: Kid
    suite: Suite
    public: dict[Literal["x25519", "mlkem768"], B64]


class KeyGeneration(BaseModel):
    """One signing key and the KEM keys issued with it, named by the signing key's id."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kid: Kid
    state: KeyState
    signing: B64
    kem: Annotated[list[KemKey], Field(max_length=4)]
    verify_until: Time | None = None
    revoked_at: Time | None = None
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class DirectoryEntry(BaseModel):
    """The record value on the key-directory topic (UTF-8 JSON; record key: participant)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    format: Literal["i247-keys/1"]
    participant: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    sequence: Annotated[int, Field(ge=1)]
    issued_at: Time
    keys: Annotated[list[KeyGeneration], Field(min_length=1, max_length=16)]
    authority: Kid
    signature: B64 = ""

    def signed_bytes(self) -> bytes:
        """Label, then the canonical JSON of every field but ``signature``."""
        return ENTRY_LABEL + canonical_json(self.model_dump(mode="json", exclude={"signature"}))

    def active(self) -> KeyGeneration:
        return next(k for k in self.keys if k.state is KeyState.ACTIVE)


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyEntryRefused(f"{what} is not base64") from None


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_entry(entry: DirectoryEntry, authority: Ed25519PrivateKey) -> DirectoryEntry:
    """``entry`` signed by the directory authority (its ``authority`` set to the key id)."""
    kid = key_id(authority.public_key().public_bytes_raw())
    unsigned = entry.model_copy(update={"authority": kid, "signature": ""})
    signature = authority.sign(unsigned.signed_bytes())
    return unsigned.model_copy(update={"signature": _b64(signature)})


def generation_of(identity: PublicIdentity, kid: str) -> KeyGeneration:
    """The active generation of a directory identity whose signing key id is ``kid``."""
    public = identity.signing[kid]
    return KeyGeneration(
        kid=kid,
        state=KeyState.ACTIVE,
        signing=_b64(public.public_bytes_raw()),
        kem=[
            KemKey(kid=k.kid, suite=k.suite, public={n: _b64(b) for n, b in k.raw.items()})  # type: ignore[misc]
            for k in identity.kem.values()
        ],
    )


def rotate(
    keys: list[KeyGeneration], new: KeyGeneration, *, now: datetime, grace: timedelta
) -> list[KeyGeneration]:
    """The key set after ``new`` becomes active: the active one retires until now + grace."""
    until = format_timestamp(now + grace)
    out = [
        k.model_copy(update={"state": KeyState.RETIRING, "verify_until": until})
        if k.state is KeyState.ACTIVE
        else k
        for k in keys
    ]
    return [*out, new]


def revoke(
    keys: list[KeyGeneration], kid: str, *, now: datetime, reason: str
) -> list[KeyGeneration]:
    """The key set with ``kid`` revoked (a revoked key stays listed, so readers refuse it)."""
    if kid not in {k.kid for k in keys}:
        raise KeyEntryRefused(f"no key {kid} in this key set: {[k.kid for k in keys]}")
    return [
        k.model_copy(
            update={
                "state": KeyState.REVOKED,
                "revoked_at": format_timestamp(now),
                "reason": reason,
                "verify_until": None,
            }
        )
        if k.kid == kid
        else k
        for k in keys
    ]


def _check_generation(participant: str, key: KeyGeneration) -> PublicIdentity:
    """The generation's keys, parsed and matched against their ids (or refused)."""
    raw = _unb64(key.signing, "signing key")
    if key_id(raw) != key.kid:
        raise KeyEntryRefused(f"{participant}: key id {key.kid} does not match its signing key")
    if key.state is KeyState.RETIRING and key.verify_until is None:
        raise KeyEntryRefused(f"{participant}: retiring key {key.kid} has no verify_until")
    if key.state is KeyState.REVOKED and (key.revoked_at is None or not key.reason):
        raise KeyEntryRefused(f"{participant}: revoked key {key.kid} needs revoked_at and reason")
    kem: dict[Suite, KemPublicKey] = {}
    for entry in key.kem:
        try:
            public = KemPublicKey.from_raw(
                entry.suite, {n: _unb64(b, "KEM key") for n, b in entry.public.items()}
            )
        except (KeyError, ValueError) as exc:
            raise KeyEntryRefused(f"{participant}: KEM key {entry.kid} unreadable: {exc}") from None
        if public.kid != entry.kid:
            raise KeyEntryRefused(f"{participant}: KEM key id {entry.kid} does not match its key")
        kem[public.suite] = public
    try:
        signing = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyEntryRefused(f"{participant}: signing key unreadable: {exc}") from None
    return PublicIdentity(participant, {key.kid: signing}, kem)


@dataclass(frozen=True)
class KeyDirectory:
    """The key-directory topic folded: the latest accepted entry of each participant."""

    authority: Ed25519PublicKey | None
    entries: Mapping[str, DirectoryEntry] = field(default_factory=dict)

    @property
    def authority_kid(self) -> str:
        if self.authority is None:
            return "none"
        return key_id(self.authority.public_bytes_raw())

    def sequence(self, participant: str) -> int:
        entry = self.entries.get(participant)
        return entry.sequence if entry is not None else 0

    def apply(self, entry: DirectoryEntry) -> KeyDirectory:
        """This directory with ``entry`` applied, or ``KeyEntryRefused`` saying why not."""
        if self.authority is None:
            raise KeyEntryRefused(
                "this keyring names no directory authority: rerun `i247 keys init` (keeps keys)"
            )
        if entry.authority != self.authority_kid:
            raise KeyEntryRefused(
                f"entry for {entry.participant} is signed by {entry.authority}, "
                f"not the directory authority {self.authority_kid}"
            )
        try:
            self.authority.verify(_unb64(entry.signature, "signature"), entry.signed_bytes())
        except InvalidSignature:
            raise KeyEntryRefused(
                f"entry {entry.sequence} for {entry.participant}: bad authority signature"
            ) from None
        current = self.entries.get(entry.participant)
        if current is not None and entry.sequence <= current.sequence:
            raise KeyEntryRefused(
                f"entry {entry.sequence} for {entry.participant} is not after "
                f"{current.sequence}: replayed or out of order"
            )
        if sum(k.state is KeyState.ACTIVE for k in entry.keys) != 1:
            raise KeyEntryRefused(f"entry for {entry.participant} must have one active key")
        if len({k.kid for k in entry.keys}) != len(entry.keys):
            raise KeyEntryRefused(f"entry for {entry.participant} lists a key twice")
        for key in entry.keys:
            _check_generation(entry.participant, key)
        if current is not None:
            now_revoked = {k.kid for k in entry.keys if k.state is KeyState.REVOKED}
            if not {k.kid for k in current.keys if k.state is KeyState.REVOKED} <= now_revoked:
                raise KeyEntryRefused(
                    f"entry for {entry.participant} reinstates or drops a revoked key: "
                    "a revocation is final"
                )
        return KeyDirectory(self.authority, {**self.entries, entry.participant: entry})

    def status(self, participant: str, kid: str, at: datetime) -> KeyStatus:
        """What ``participant``'s key ``kid`` may do at ``at`` (UNKNOWN: no entry names it)."""
        entry = self.entries.get(participant)
        key = next((k for k in entry.keys if k.kid == kid), None) if entry else None
        if key is None:
            return KeyStatus.UNKNOWN
        if key.state is KeyState.ACTIVE:
            return KeyStatus.ACTIVE
        if key.state is KeyState.REVOKED:
            return KeyStatus.REVOKED
        assert key.verify_until is not None
        return KeyStatus.IN_GRACE if at <= _parse_time(key.verify_until) else KeyStatus.EXPIRED

    def may_verify(self, participant: str, kid: str, at: datetime) -> bool:
        return self.status(participant, kid, at) in (KeyStatus.ACTIVE, KeyStatus.IN_GRACE)

    def sealing_key_for(self, participant: str) -> str | None:
        """The generation (signing key id) to seal for, or None when no entry names one."""
        entry = self.entries.get(participant)
        return entry.active().kid if entry is not None else None

    def overlay(self, directory: Directory) -> Directory:
        """``directory`` with every participant named here given its entry's keys.

        Signing keys: the active and retiring ones (revoked ones are refused by id first);
        KEM keys: the active generation's only, so nothing is ever sealed for a retired or
        revoked key.
        """
        identities = dict(directory.identities)
        revoked = dict(directory.revoked)
        until = dict(directory.verify_until)
        for participant, entry in self.entries.items():
            signing: dict[str, Ed25519PublicKey] = {}
            kem: dict[Suite, KemPublicKey] = {}
            for key in entry.keys:
                public = _check_generation(participant, key)
                if key.state is KeyState.REVOKED:
                    assert key.revoked_at is not None
                    assert key.reason is not None
                    gone = RevokedKey(participant, _parse_time(key.revoked_at), key.reason)
                    revoked[key.kid] = gone
                    revoked.update((k.kid, gone) for k in public.kem.values())
                    continue
                signing.update(public.signing)
                if key.state is KeyState.RETIRING:
                    assert key.verify_until is not None
                    until[key.kid] = _parse_time(key.verify_until)
                else:
                    kem = dict(public.kem)
            identities[participant] = PublicIdentity(participant, signing, kem)
        return directory.replaced(identities, revoked=revoked, verify_until=until)

    def fold(self, value: bytes) -> KeyDirectory:
        """``apply`` a record value as read from the topic (``KeyEntryRefused`` if unreadable)."""
        try:
            entry = DirectoryEntry.model_validate_json(value)
        except ValidationError as exc:
            raise KeyEntryRefused(f"not a directory entry: {exc.errors()[0]['msg']}") from None
        return self.apply(entry)


def key_directory_for(directory: Directory) -> KeyDirectory:
    """An empty key directory trusting ``directory``'s authority (from ``directory.json``)."""
    return KeyDirectory(directory.authority)
