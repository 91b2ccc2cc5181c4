"""Participants' keys: who signs with what, who can unwrap what, and how keys sit on disk.

Every participant (NCB, hub, team, auditor) has an Ed25519 signing key and one KEM key
per HPKE suite. Each key has a *key id* (``kid``): the first 16 hex digits of SHA-256 over
its raw public bytes, so a key can rotate while older messages still name the key they
used. The directory (public keys of everyone) is ``directory.json``; each private identity
is ``private/<participant>.json`` with mode 0600. Layout: docs/wire-format.md, "Keys".

Keys change at run time through the key-directory topic (``schemas.key_directory``): a
``Directory`` then also knows which key ids are revoked and until when a rotated-out key
still verifies; ``check_signing_key`` answers that before any signature is checked.
The directory authority (``private/directory-authority.json``, public half in
``directory.json``) signs those entries, so no bureau can publish a key for another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import KeyExpired, KeyRevoked, UnknownParticipant
from schemas.header import Suite, format_timestamp
from schemas.participants import AUDITOR, CCC, HUB_SITES, hub_id

__all__ = [
    "DIRECTORY_FORMAT",
    "Directory",
    "KemPrivateKey",
    "KemPublicKey",
    "KeyFileError",
    "PrivateIdentity",
    "PublicIdentity",
    "RevokedKey",
    "generate_identity",
    "init_keyring",
    "key_id",
    "load_authority",
    "load_directory",
    "load_identity",
    "private_key_path",
    "save_identity",
    "write_directory",
]

DIRECTORY_FORMAT = "i247-directory/1"
PRIVATE_FORMAT = "i247-private/1"
AUTHORITY_FORMAT = "i247-authority/1"
AUTHORITY_FILE = "directory-authority.json"

HpkePublic = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
HpkePrivate = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


class KeyFileError(Exception):
    """A key file is missing, unreadable or of the wrong format."""


def key_id(public_bytes: bytes) -> str:
    """The key id: first 16 lowercase hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True, slots=True)
class KemPublicKey:
    """A recipient's public key for one HPKE suite, parsed once and reused."""

    kid: str
    suite: Suite
    key: HpkePublic
    raw: Mapping[str, bytes]

    @classmethod
    def from_raw(cls, suite: Suite, raw: Mapping[str, bytes]) -> KemPublicKey:
        x = x25519.X25519PublicKey.from_public_bytes(raw["x25519"])
        if suite is Suite.X25519:
            return cls(key_id(raw["x25519"]), suite, x, dict(raw))
        m = mlkem.MLKEM768PublicKey.from_public_bytes(raw["mlkem768"])
        kid = key_id(raw["mlkem768"] + raw["x25519"])
        return cls(kid, suite, hpke.MLKEM768X25519PublicKey(m, x), dict(raw))


@dataclass(frozen=True, slots=True)
class KemPrivateKey:
    kid: str
    suite: Suite
    key: HpkePrivate
    raw: Mapping[str, bytes]
    public: KemPublicKey

    @classmethod
    def from_raw(cls, suite: Suite, raw: Mapping[str, bytes]) -> KemPrivateKey:
        x = x25519.X25519PrivateKey.from_private_bytes(raw["x25519"])
        x_pub = x.public_key().public_bytes_raw()
        if suite is Suite.X25519:
            public = KemPublicKey.from_raw(suite, {"x25519": x_pub})
            return cls(public.kid, suite, x, dict(raw), public)
        m = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw["mlkem768"])
        m_pub = m.public_key().public_bytes_raw()
        public = KemPublicKey.from_raw(suite, {"mlkem768": m_pub, "x25519": x_pub})
        return cls(public.kid, suite, hpke.MLKEM768X25519PrivateKey(m, x), dict(raw), public)

    @classmethod
    def generate(cls, suite: Suite) -> KemPrivateKey:
        raw = {"x25519": x25519.X25519PrivateKey.generate().private_bytes_raw()}
        if suite is Suite.MLKEM768_X25519:
            raw["mlkem768"] = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
        return cls.from_raw(suite, raw)


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What everyone may know of a participant: its verification and wrapping keys."""

    participant: str
    signing: Mapping[str, Ed25519PublicKey]
    kem: Mapping[Suite, KemPublicKey]

    def to_json(self) -> dict[str, Any]:
        return {
            "signing": [
                {"kid": k, "public": _b64(v.public_bytes_raw())} for k, v in self.signing.items()
            ],
            "kem": [
                {
                    "kid": v.kid,
                    "suite": v.suite.value,
                    "public": {n: _b64(b) for n, b in v.raw.items()},
                }
                for v in self.kem.values()
            ],
        }

    @classmethod
    def from_json(cls, participant: str, data: Mapping[str, Any]) -> PublicIdentity:
        signing: dict[str, Ed25519PublicKey] = {}
        for entry in data["signing"]:
            raw = _unb64(entry["public"])
            if key_id(raw) != entry["kid"]:
                raise KeyFileError(
                    f"{participant}: signing key id {entry['kid']} does not match its key"
                )
            signing[entry["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
        kem: dict[Suite, KemPublicKey] = {}
        for entry in data["kem"]:
            key = KemPublicKey.from_raw(
                Suite(entry["suite"]), {n: _unb64(b) for n, b in entry["public"].items()}
            )
            if key.kid != entry["kid"]:
                raise KeyFileError(
                    f"{participant}: KEM key id {entry['kid']} does not match its key"
                )
            kem[key.suite] = key  # the last entry per suite is the current one
        return cls(participant, signing, kem)


@dataclass(frozen=True, slots=True)
class PrivateIdentity:
    """One participant's own keys: the current signing key and every KEM key it still holds."""

    participant: str
    signing_key: Ed25519PrivateKey
    signing_kid: str
    kem_keys: Mapping[str, KemPrivateKey]  # by kid, including retired keys for old traffic
    signing_public: bytes = field(init=False, repr=False, compare=False)
    """Raw public key of ``signing_key``, derived once (deriving costs ~25 µs a time)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "signing_public", self.signing_key.public_key().public_bytes_raw())

    def public(self) -> PublicIdentity:
        current: dict[Suite, KemPublicKey] = {}
        for key in self.kem_keys.values():
            current[key.suite] = key.public
        return PublicIdentity(
            self.participant,
            {self.signing_kid: Ed25519PublicKey.from_public_bytes(self.signing_public)},
            current,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PRIVATE_FORMAT,
            "participant": self.participant,
            "signing": {
                "kid": self.signing_kid,
                "private": _b64(self.signing_key.private_bytes_raw()),
            },
            "kem": [
                {
                    "kid": k.kid,
                    "suite": k.suite.value,
                    "private": {n: _b64(b) for n, b in k.raw.items()},
                }
                for k in self.kem_keys.values()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrivateIdentity:
        if data.get("format") != PRIVATE_FORMAT:
            raise KeyFileError(f"not an {PRIVATE_FORMAT} file")
        signing = Ed25519PrivateKey.from_private_bytes(_unb64(data["signing"]["private"]))
        kem: dict[str, KemPrivateKey] = {}
        for entry in data["kem"]:
            key = KemPrivateKey.from_raw(
                Suite(entry["suite"]), {n: _unb64(b) for n, b in entry["private"].items()}
            )
            kem[key.kid] = key
        kid = key_id(signing.public_key().public_bytes_raw())
        return cls(data["participant"], signing, kid, kem)


def generate_identity(participant: str, suites: Iterable[Suite] = tuple(Suite)) -> PrivateIdentity:
    """Fresh keys for one participant (the operating system's randomness, via cryptography)."""
    signing = Ed25519PrivateKey.generate()
    kem = {k.kid: k for k in (KemPrivateKey.generate(s) for s in suites)}
    return PrivateIdentity(
        participant, signing, key_id(signing.public_key().public_bytes_raw()), kem
    )


@dataclass(frozen=True, slots=True)
class RevokedKey:
    """A key id the CCC revoked: whose, when, and why (from the key-directory topic)."""

    participant: str
    revoked_at: datetime
    reason: str


@dataclass(frozen=True)
class Directory:
    """Everyone's public keys; resolves senders and expands logical recipients to key holders.

    ``revoked`` and ``verify_until`` (by key id) come from the key-directory topic: a
    revoked key never verifies; a rotated-out key verifies until its grace deadline.
    """

    identities: Mapping[str, PublicIdentity]
    _ccc: tuple[str, ...] = field(init=False)
    authority: Ed25519PublicKey | None = None
    revoked: Mapping[str, RevokedKey] = field(default_factory=dict)
    verify_until: Mapping[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        holders = [hub_id(site) for site in HUB_SITES] + [AUDITOR]
        object.__setattr__(self, "_ccc", tuple(p for p in holders if p in self.identities))

    def __contains__(self, participant: object) -> bool:
        return participant in self.identities

    def __len__(self) -> int:
        return len(self.identities)

    def get(self, participant: str, *, role: str = "recipient") -> PublicIdentity:
        try:
            return self.identities[participant]
        except KeyError:
            raise UnknownParticipant(participant, role=role) from None

    def key_holders(self, recipient: str) -> tuple[str, ...]:
        """Who holds a key for ``recipient``: itself, or every hub and the auditor for ``ccc``.

        A recipient this directory does not know still holds its own key: a reader can check
        a message's wraps (and open its own) without knowing every other recipient, e.g. a
        bureau reading a notice also copied to a team it never heard of. Sealing for an
        unknown recipient still fails, when its key is looked up.
        """
        if recipient == CCC:
            return self._ccc
        return (recipient,)

    def check_signing_key(self, participant: str, kid: str, at: datetime | None) -> None:
        """Refuse ``participant``'s key ``kid`` if revoked, or (given ``at``) past its grace.

        Called before a signature is checked, so no remembered verification
        (``schemas.sealing_memo``) can answer for a revoked key.
        """
        revoked = self.revoked.get(kid)
        if revoked is not None and revoked.participant == participant:
            raise KeyRevoked(
                participant,
                kid,
                revoked_at=format_timestamp(revoked.revoked_at),
                why=revoked.reason,
            )
        until = self.verify_until.get(kid)
        if at is not None and until is not None and at > until:
            raise KeyExpired(participant, kid, verify_until=format_timestamp(until))

    def signing_key_owner(self, kid: str) -> str | None:
        """Whose signing key ``kid`` is, to say so when a message is signed with the wrong one."""
        for participant, identity in self.identities.items():
            if kid in identity.signing:
                return participant
        return None

    def with_identities(self, extra: Iterable[PublicIdentity]) -> Directory:
        merged = dict(self.identities)
        merged.update((i.participant, i) for i in extra)
        return self.replaced(merged)

    def replaced(
        self,
        identities: Mapping[str, PublicIdentity],
        *,
        revoked: Mapping[str, RevokedKey] | None = None,
        verify_until: Mapping[str, datetime] | None = None,
    ) -> Directory:
        """This directory with other identities (and key states), its authority kept."""
        return Directory(
            identities,
            authority=self.authority,
            revoked=self.revoked if revoked is None else revoked,
            verify_until=self.verify_until if verify_until is None else verify_until,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": DIRECTORY_FORMAT,
            "participants": {p: i.to_json() for p, i in sorted(self.identities.items())},
        }
        if self.authority is not None:
            raw = self.authority.public_bytes_raw()
            document["authority"] = {"kid": key_id(raw), "public": _b64(raw)}
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Directory:
        if data.get("format") != DIRECTORY_FORMAT:
            raise KeyFileError(f"not an {DIRECTORY_FORMAT} file")
        authority = None
        if "authority" in data:
            raw = _unb64(data["authority"]["public"])
            if key_id(raw) != data["authority"]["kid"]:
                raise KeyFileError("the directory authority's key id does not match its key")
            authority = Ed25519PublicKey.from_public_bytes(raw)
        return cls(
            {p: PublicIdentity.from_json(p, d) for p, d in data["participants"].items()},
            authority=authority,
        )


def private_key_path(keys_dir: Path, participant: str) -> Path:
    return keys_dir / "private" / f"{participant.replace(':', '_')}.json"


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def save_identity(keys_dir: Path, identity: PrivateIdentity) -> Path:
    """Write one participant's private keys as ``init_keyring`` does (file mode 0600).

    For participants created at run time (response teams); the directory file is not
    touched: their public keys travel on the journal instead.
    """
    private_dir = keys_dir / "private"
    private_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(private_dir, 0o700)
    path = private_key_path(keys_dir, identity.participant)
    _write_private(path, json.dumps(identity.to_json(), indent=1))
    return path


def init_keyring(
    keys_dir: Path, participants: Iterable[str], *, overwrite: bool = False
) -> Directory:
    """Generate keys for every participant that has none yet; write the directory.

    Existing private keys are kept (so re-running is safe) unless ``overwrite``.
    """
    private_dir = keys_dir / "private"
    private_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(private_dir, 0o700)
    identities: dict[str, PublicIdentity] = {}
    for participant in participants:
        path = private_key_path(keys_dir, participant)
        if path.exists() and not overwrite:
            identity = load_identity(keys_dir, participant)
        else:
            identity = generate_identity(participant)
            _write_private(path, json.dumps(identity.to_json(), indent=1))
        identities[participant] = identity.public()
    authority = _authority(keys_dir, overwrite=overwrite)
    directory = Directory(identities, authority=authority.public_key())
    write_directory(keys_dir, directory)
    return directory


def write_directory(keys_dir: Path, directory: Directory) -> None:
    """Replace ``directory.json`` atomically (``init_keyring``, ``i247 keys rotate``)."""
    tmp = keys_dir / "directory.json.tmp"
    tmp.write_text(json.dumps(directory.to_json(), indent=1), encoding="utf-8")
    tmp.replace(keys_dir / "directory.json")


def _authority(keys_dir: Path, *, overwrite: bool) -> Ed25519PrivateKey:
    path = keys_dir / "private" / AUTHORITY_FILE
    if path.exists() and not overwrite:
        return load_authority(keys_dir)
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    document = {
        "format": AUTHORITY_FORMAT,
        "kid": key_id(raw),
        "private": _b64(key.private_bytes_raw()),
    }
    _write_private(path, json.dumps(document, indent=1))
    return key


def load_authority(keys_dir: Path) -> Ed25519PrivateKey:
    """The directory authority's signing key: only the CCC's operators hold this file."""
    path = keys_dir / "private" / AUTHORITY_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyFileError(
            f"no directory authority key at {path}; run `i247 keys init --dir {keys_dir}`"
        ) from None
    if document.get("format") != AUTHORITY_FORMAT:
        raise KeyFileError(f"{path} is not an {AUTHORITY_FORMAT} file")
    return Ed25519PrivateKey.from_private_bytes(_unb64(document["private"]))


def load_directory(keys_dir: Path) -> Directory:
    path = keys_dir / "directory.json"
    try:
        return Directory.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise KeyFileError(
            f"no key directory at {path}; run `i247 keys init --dir {keys_dir}`"
        ) from None


def load_identity(keys_dir: Path, participant: str) -> PrivateIdentity:
    path = private_key_path(keys_dir, participant)
    try:
        identity = PrivateIdentity.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise KeyFileError(
            f"no private keys for {participant} at {path}; run `i247 keys init --dir {keys_dir}`"
        ) from None
    if identity.participant != participant:
        raise KeyFileError(f"{path} holds keys of {identity.participant}, not {participant}")
    return identity
