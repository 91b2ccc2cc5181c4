"""Keys: how they sit on disk, how they are named, and how they rotate (wire format §8)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.bodies import MessageBody
from schemas.errors import NotARecipient
from schemas.header import Language, MessageType, Precedence, RoutingHeader, Suite
from schemas.keys import (
    Directory,
    KemPrivateKey,
    KeyFileError,
    PrivateIdentity,
    generate_identity,
    init_keyring,
    key_id,
    load_directory,
    load_identity,
    private_key_path,
)
from schemas.sealing import SealedMessage, open_sealed, seal, verify
from tests.unit.keyring import small_keyring

PARTICIPANTS = ["FRA", "DEU", "hub:lyon", "auditor"]
TOPIC, KEY = "i247.inbound", b"FRA"
BODY = MessageBody(subject="Extradition file", text="Documents follow")

each_suite = pytest.mark.parametrize("suite", list(Suite), ids=["x25519", "mlkem768-x25519"])


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def kids(identity: PrivateIdentity) -> set[str]:
    return {identity.signing_kid, *identity.kem_keys}


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Files would be world-readable by default: the keyring must not rely on the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# init_keyring: files and modes


def test_init_writes_the_directory_and_one_private_file_per_participant(tmp_path: Path) -> None:
    directory = init_keyring(tmp_path, PARTICIPANTS)
    assert sorted(p.name for p in (tmp_path / "private").iterdir()) == [
        "DEU.json",
        "FRA.json",
        "auditor.json",
        "directory-authority.json",  # signs key directory entries (schemas.key_directory)
        "hub_lyon.json",
    ]
    assert directory.authority is not None
    assert private_key_path(tmp_path, "hub:lyon") == tmp_path / "private" / "hub_lyon.json"
    assert set(directory.identities) == set(PARTICIPANTS)
    assert load_directory(tmp_path).to_json() == directory.to_json()


@pytest.mark.usefixtures("permissive_umask")
def test_private_files_are_mode_0600_in_a_directory_of_mode_0700(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir(mode=0o755)
    init_keyring(tmp_path, PARTICIPANTS)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    for participant in PARTICIPANTS:
        mode = private_key_path(tmp_path, participant).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, participant


@pytest.mark.usefixtures("permissive_umask")
def test_overwriting_keys_keeps_the_private_file_mode_0600(tmp_path: Path) -> None:
    path = private_key_path(tmp_path, "FRA")
    path.parent.mkdir()
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    init_keyring(tmp_path, ["FRA"], overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_second_run_keeps_every_existing_key(tmp_path: Path) -> None:
    first = init_keyring(tmp_path, PARTICIPANTS)
    before = {p: private_key_path(tmp_path, p).read_bytes() for p in PARTICIPANTS}
    second = init_keyring(tmp_path, PARTICIPANTS)
    assert {p: private_key_path(tmp_path, p).read_bytes() for p in PARTICIPANTS} == before
    assert second.to_json() == first.to_json()


def test_a_second_run_adds_keys_for_new_participants_only(tmp_path: Path) -> None:
    init_keyring(tmp_path, ["FRA"])
    fra = private_key_path(tmp_path, "FRA").read_bytes()
    directory = init_keyring(tmp_path, ["FRA", "DEU"])
    assert private_key_path(tmp_path, "FRA").read_bytes() == fra
    assert set(directory.identities) == {"FRA", "DEU"}


def test_overwrite_rotates_every_key(tmp_path: Path) -> None:
    init_keyring(tmp_path, PARTICIPANTS)
    before = {p: kids(load_identity(tmp_path, p)) for p in PARTICIPANTS}
    init_keyring(tmp_path, PARTICIPANTS, overwrite=True)
    for participant in PARTICIPANTS:
        assert kids(load_identity(tmp_path, participant)).isdisjoint(before[participant])


def test_a_loaded_identity_matches_its_directory_entry(tmp_path: Path) -> None:
    directory, identities = small_keyring(tmp_path)
    for participant, identity in identities.items():
        assert identity.participant == participant
        assert identity.public().to_json() == directory.get(participant).to_json()


# Key files that cannot be used


def load_fra(keys_dir: Path) -> PrivateIdentity:
    return load_identity(keys_dir, "FRA")


@pytest.mark.parametrize("load", [load_fra, load_directory], ids=["private-keys", "directory"])
def test_a_missing_key_file_says_to_run_keys_init(
    tmp_path: Path, load: Callable[[Path], object]
) -> None:
    with pytest.raises(KeyFileError, match="run `i247 keys init --dir "):
        load(tmp_path)


def test_a_private_file_holding_another_participants_keys_is_refused(tmp_path: Path) -> None:
    init_keyring(tmp_path, ["FRA"])
    private_key_path(tmp_path, "DEU").write_bytes(private_key_path(tmp_path, "FRA").read_bytes())
    with pytest.raises(KeyFileError, match="holds keys of FRA, not DEU"):
        load_identity(tmp_path, "DEU")


@pytest.mark.parametrize(
    ("file", "load"),
    [("directory.json", load_directory), ("private/FRA.json", load_fra)],
    ids=["directory", "private"],
)
def test_a_key_file_of_another_format_is_refused(
    tmp_path: Path, file: str, load: Callable[[Path], object]
) -> None:
    init_keyring(tmp_path, ["FRA"])
    data = read_json(tmp_path / file)
    data["format"] = "i247-directory/2"
    (tmp_path / file).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KeyFileError, match="not an i247-"):
        load(tmp_path)


@pytest.mark.parametrize(("kind", "index"), [("signing", 0), ("kem", 0), ("kem", 1)])
def test_a_directory_whose_key_id_does_not_match_its_key_is_refused(
    tmp_path: Path, kind: str, index: int
) -> None:
    init_keyring(tmp_path, ["FRA", "DEU"])
    data = read_json(tmp_path / "directory.json")
    # DEU's key listed under FRA's key id: the id must be derived from the key, not trusted.
    data["participants"]["DEU"][kind][index]["kid"] = data["participants"]["FRA"][kind][index][
        "kid"
    ]
    (tmp_path / "directory.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KeyFileError, match=r"DEU: .*key id .* does not match its key"):
        load_directory(tmp_path)


# Key ids and the file layout


def test_key_ids_are_16_hex_digits_of_sha256_over_the_raw_public_key(tmp_path: Path) -> None:
    init_keyring(tmp_path, ["FRA"])
    private = read_json(private_key_path(tmp_path, "FRA"))
    signing = Ed25519PrivateKey.from_private_bytes(unb64(private["signing"]["private"]))
    expected = {
        private["signing"]["kid"]: signing.public_key().public_bytes_raw(),
    }
    for entry in private["kem"]:
        raw = entry["private"]
        public = x25519.X25519PrivateKey.from_private_bytes(unb64(raw["x25519"]))
        public_bytes = public.public_key().public_bytes_raw()
        if entry["suite"] == Suite.MLKEM768_X25519.value:
            encapsulation = mlkem.MLKEM768PrivateKey.from_seed_bytes(unb64(raw["mlkem768"]))
            public_bytes = encapsulation.public_key().public_bytes_raw() + public_bytes
        expected[entry["kid"]] = public_bytes
    assert len(expected) == 1 + len(Suite)
    for kid, public_bytes in expected.items():
        assert kid == hashlib.sha256(public_bytes).hexdigest()[:16] == key_id(public_bytes)


def test_the_private_file_holds_seeds_in_the_documented_layout(tmp_path: Path) -> None:
    init_keyring(tmp_path, ["FRA"])
    private = read_json(private_key_path(tmp_path, "FRA"))
    assert private["format"] == "i247-private/1"
    assert private["participant"] == "FRA"
    assert len(unb64(private["signing"]["private"])) == 32
    sizes = {
        e["suite"]: {name: len(unb64(v)) for name, v in e["private"].items()}
        for e in private["kem"]
    }
    assert sizes == {
        Suite.X25519.value: {"x25519": 32},
        Suite.MLKEM768_X25519.value: {"x25519": 32, "mlkem768": 64},
    }


def test_the_directory_holds_public_keys_in_the_documented_layout(tmp_path: Path) -> None:
    init_keyring(tmp_path, ["FRA"])
    directory = read_json(tmp_path / "directory.json")
    assert directory["format"] == "i247-directory/1"
    fra = directory["participants"]["FRA"]
    assert [len(unb64(e["public"])) for e in fra["signing"]] == [32]
    sizes = {
        e["suite"]: {name: len(unb64(v)) for name, v in e["public"].items()} for e in fra["kem"]
    }
    assert sizes == {
        Suite.X25519.value: {"x25519": 32},
        Suite.MLKEM768_X25519.value: {"x25519": 32, "mlkem768": 1184},
    }


# Rotation: old traffic stays readable


def header_to_deu(suite: Suite) -> RoutingHeader:
    return RoutingHeader(
        message_id=str(uuid.uuid4()),
        sender="FRA",
        recipients=["DEU"],
        message_type=MessageType.MESSAGE,
        precedence=Precedence.ROUTINE,
        created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        language=Language.EN,
        trace_id=uuid.uuid4().hex,
        suite=suite,
    )


def seal_to_deu(directory: Directory, suite: Suite) -> SealedMessage:
    fra = small_keyring()[1]["FRA"]
    return seal(header_to_deu(suite), BODY, sender=fra, directory=directory, topic=TOPIC, key=KEY)


def deu_wrap_kid(sealed: SealedMessage) -> str:
    (kid,) = (kid for holder, kid, _ in sealed.wraps if holder == "DEU")
    return kid


def with_new_kem_key(identity: PrivateIdentity, suite: Suite) -> PrivateIdentity:
    new = KemPrivateKey.generate(suite)
    return PrivateIdentity(
        identity.participant,
        identity.signing_key,
        identity.signing_kid,
        {**identity.kem_keys, new.kid: new},
    )


@each_suite
def test_a_retired_kem_key_kept_in_the_private_file_still_opens_old_messages(
    tmp_path: Path, suite: Suite
) -> None:
    base, _ = small_keyring()
    old = generate_identity("DEU")
    old_message = seal_to_deu(base.with_identities([old.public()]), suite)

    rotated = with_new_kem_key(old, suite)
    (tmp_path / "private").mkdir()
    private_key_path(tmp_path, "DEU").write_text(json.dumps(rotated.to_json()), encoding="utf-8")
    deu = load_identity(tmp_path, "DEU")
    directory = base.with_identities([deu.public()])  # lists only the new key as current

    (new_kid,) = set(rotated.kem_keys) - set(old.kem_keys)
    assert directory.get("DEU").kem[suite].kid == new_kid
    assert deu_wrap_kid(old_message) != new_kid
    opened = open_sealed(old_message, topic=TOPIC, key=KEY, directory=directory, identity=deu)
    assert opened.body == BODY


@each_suite
def test_after_rotation_new_messages_are_wrapped_for_the_new_key_only(suite: Suite) -> None:
    base, _ = small_keyring()
    old = generate_identity("DEU")
    rotated = with_new_kem_key(old, suite)
    new_message = seal_to_deu(base.with_identities([rotated.public()]), suite)
    assert deu_wrap_kid(new_message) in set(rotated.kem_keys) - set(old.kem_keys)
    with pytest.raises(NotARecipient):
        open_sealed(
            new_message,
            topic=TOPIC,
            key=KEY,
            directory=base.with_identities([rotated.public()]),
            identity=old,
        )


def test_the_last_kem_entry_per_suite_in_the_directory_is_current() -> None:
    old = generate_identity("DEU")
    rotated = with_new_kem_key(with_new_kem_key(old, Suite.X25519), Suite.MLKEM768_X25519)
    listed = old.public().to_json()
    listed["kem"] += rotated.public().to_json()["kem"]  # old entries first, then the new ones
    directory = Directory.from_json({"format": "i247-directory/1", "participants": {"DEU": listed}})
    for suite in Suite:
        assert directory.get("DEU").kem[suite].kid == rotated.public().kem[suite].kid


def test_any_signing_key_the_directory_lists_verifies() -> None:
    base, ids = small_keyring()
    retired = ids["FRA"]
    current = generate_identity("FRA")
    listed = current.public().to_json()
    listed["signing"] = retired.public().to_json()["signing"] + listed["signing"]
    directory = Directory.from_json(
        {
            "format": "i247-directory/1",
            "participants": {**base.to_json()["participants"], "FRA": listed},
        }
    )
    for sender in (retired, current):
        sealed = seal(
            header_to_deu(Suite.X25519),
            BODY,
            sender=sender,
            directory=directory,
            topic=TOPIC,
            key=KEY,
        )
        assert verify(sealed, topic=TOPIC, key=KEY, directory=directory) == sealed.header
