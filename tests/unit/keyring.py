"""A small keyring for unit tests: four NCBs, the three hubs and the auditor.

In memory by default (made once per session, generating keys is the slow part); on disk
through ``init_keyring`` when a test needs the files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from schemas.keys import Directory, PrivateIdentity, generate_identity, init_keyring, load_identity

__all__ = ["HUBS", "NCBS", "PARTICIPANTS", "small_keyring"]

NCBS: tuple[str, ...] = ("FRA", "DEU", "ITA", "ESP")
HUBS: tuple[str, ...] = ("hub:lyon", "hub:buenos-aires", "hub:singapore")
PARTICIPANTS: tuple[str, ...] = (*NCBS, *HUBS, "auditor")


@cache
def _in_memory() -> tuple[Directory, tuple[tuple[str, PrivateIdentity], ...]]:
    identities = tuple((p, generate_identity(p)) for p in PARTICIPANTS)
    return Directory({p: i.public() for p, i in identities}), identities


def small_keyring(
    tmp_dir: Path | None = None,
) -> tuple[Directory, dict[str, PrivateIdentity]]:
    """The directory and every participant's private identity.

    Without ``tmp_dir`` the keys live in memory and are shared by every caller; with it,
    they are written there by ``init_keyring`` and read back from the files.
    """
    if tmp_dir is None:
        directory, identities = _in_memory()
        return directory, dict(identities)
    directory = init_keyring(tmp_dir, PARTICIPANTS)
    return directory, {p: load_identity(tmp_dir, p) for p in PARTICIPANTS}
