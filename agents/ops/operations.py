"""Operations on a deployment as a whole: provisioning every topic it needs."""

from __future__ import annotations

from brokers.provisioning import ProvisionReport, provision
from brokers.settings import Settings, SettingsError
from schemas.registry import default_registry
from schemas.topics import TopicSpec

__all__ = ["backbone_topics", "provision_all"]


def backbone_topics(settings: Settings) -> list[TopicSpec]:
    """The core topics and every NCB inbox: what ``i247 provision`` makes, what a hub needs."""
    topics = settings.topics
    return topics.core() + topics.inboxes(list(default_registry().codes()))


async def provision_all(settings: Settings) -> ProvisionReport:
    """Create the core topics and every NCB inbox (idempotent)."""
    if not settings.bootstrap:
        raise SettingsError("provisioning needs a broker: set I247_BOOTSTRAP=host:port")
    return await provision(
        settings.bootstrap, backbone_topics(settings), settings.replication_factor
    )
