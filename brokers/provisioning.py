"""Idempotent topic provisioning: create what is missing, leave what exists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import TopicSpec

__all__ = ["ProvisionReport", "provision"]


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{len(self.created)} created, {len(self.existing)} already there"


async def provision(
    bootstrap: str, specs: Iterable[TopicSpec], replication_factor: int = 1
) -> ProvisionReport:
    """Create every topic in ``specs`` that the broker does not have yet."""
    wanted = {spec.name: spec for spec in specs}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [s for name, s in wanted.items() if name not in present]
        created: list[str] = []
        for start in range(0, len(missing), 100):
            chunk = missing[start : start + 100]
            topics = [
                NewTopic(
                    s.name,
                    s.partitions,
                    replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if s.compacted else {},
                )
                for s in chunk
            ]
            try:
                await admin.create_topics(topics)
                created.extend(s.name for s in chunk)
            except TopicAlreadyExistsError:
                for topic in topics:  # raced with another provisioner: go one by one
                    try:
                        await admin.create_topics([topic])
                        created.append(topic.name)
                    except TopicAlreadyExistsError:
                        pass
    finally:
        await admin.close()
    existing = tuple(sorted(set(wanted) - set(created)))
    return ProvisionReport(tuple(sorted(created)), existing)
