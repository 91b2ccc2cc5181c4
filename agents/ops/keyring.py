"""The keyring every process of a deployment shares: all NCBs, the hubs, the auditor."""

from __future__ import annotations

from pathlib import Path

from schemas.keys import Directory, PrivateIdentity, init_keyring, load_directory, load_identity
from schemas.participants import AUDITOR, HUB_SITES, hub_id
from schemas.registry import default_registry

__all__ = ["all_participants", "init_all", "load_all"]


def all_participants() -> list[str]:
    return [*default_registry().codes(), *(hub_id(s) for s in HUB_SITES), AUDITOR]


def init_all(keys_dir: Path, *, overwrite: bool = False) -> Directory:
    """Keys for every participant that lacks them (idempotent unless ``overwrite``)."""
    return init_keyring(keys_dir, all_participants(), overwrite=overwrite)


def load_all(
    keys_dir: Path, participants: list[str]
) -> tuple[Directory, dict[str, PrivateIdentity]]:
    """The directory and the private identities of ``participants`` (creating keys if absent)."""
    if not (keys_dir / "directory.json").exists() or load_directory(keys_dir).authority is None:
        init_all(keys_dir)  # existing keys kept; a keyring from before gains its authority
    directory = load_directory(keys_dir)
    return directory, {p: load_identity(keys_dir, p) for p in participants}
