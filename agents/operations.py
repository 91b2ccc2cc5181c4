"""Operations on a deployment as a whole: provisioning every topic it needs."""

from __future__ import annotations

from brokers.provisioning import ProvisionReport, provision
from brokers.settings import Settings
from schemas.registry import default_registry

__all__ = ["provision_all"]


async def provision_all(settings: Settings) -> ProvisionReport:
    """Create the core topics and every NCB inbox (idempotent)."""
    if not settings.bootstrap:
        raise SystemExit("provisioning needs a broker: set I247_BOOTSTRAP")
    topics = settings.topics
    specs = topics.core() + topics.inboxes(list(default_registry().codes()))
    return await provision(settings.bootstrap, specs, settings.replication_factor)
