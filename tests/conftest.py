"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from agents.ops.keyring import all_participants, init_all
from schemas.keys import Directory, PrivateIdentity, load_identity

# The machine running the suite is often loaded: an example's wall time says nothing about
# the code under test, so no deadline and no complaint that generating examples is slow.
settings.register_profile(
    "i247", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("i247")


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keyring for every NCB, hub and the auditor, made once per test session."""
    path = tmp_path_factory.mktemp("keys")
    init_all(path)
    return path


@pytest.fixture(scope="session")
def keyring(keys_dir: Path) -> tuple[Directory, dict[str, PrivateIdentity]]:
    from schemas.keys import load_directory

    directory = load_directory(keys_dir)
    return directory, {p: load_identity(keys_dir, p) for p in all_participants()}
