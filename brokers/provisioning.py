"""Idempotent topic provisioning: create what is missing, leave what exists.

Provisioning is explicit even though Tansu creates a topic on first produce: only here do
topics get their partition count, replication factor and ``cleanup.policy`` (Tansu keeps
every record whatever the policy; Kafka compacts). Running it twice, or two provisioners at
once, is safe: a topic that appears in between is reported as existing, not as an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from brokers.access import process_security
from schemas.topics import TopicSpec

__all__ = ["ProvisionError", "ProvisionReport", "provision"]

log = structlog.get_logger("i247.provision")

_CHUNK = 100  # topics per CreateTopics request: 196 inboxes fit in a few round trips


class ProvisionError(RuntimeError):
    """The broker could not be reached or refused to create topics; the message says why."""


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """Which of the wanted topics this run created and which were already there."""

    created: tuple[str, ...]
    existing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{len(self.created)} created, {len(self.existing)} already there"


def _unique(specs: Iterable[TopicSpec]) -> dict[str, TopicSpec]:
    wanted: dict[str, TopicSpec] = {}
    for spec in specs:
        if wanted.setdefault(spec.name, spec) != spec:
            raise ValueError(f"topic {spec.name!r} is specified twice, differently")
    return wanted


def _new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    configs = {"cleanup.policy": "compact"} if spec.compacted else {}
    return NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=configs)


async def provision(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    replication_factor: int = 1,
    *,
    security: Mapping[str, Any] | None = None,
) -> ProvisionReport:
    """Create every topic in ``specs`` that the broker does not have yet.

    Raises ``ProvisionError`` naming each topic the broker refused (a replication factor
    above the number of brokers is the usual cause) or when ``bootstrap`` does not answer.
    ``security``: aiokafka TLS/SASL options (default: this process's ``I247_*``).
    """
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, not {replication_factor}")
    wanted = _unique(specs)
    created: list[str] = []
    refused: list[str] = []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="i247-provision",
        **(process_security() if security is None else security),
    )
    try:
        await admin.start()
        present = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in present]
        for start in range(0, len(missing), _CHUNK):
            chunk = [_new_topic(s, replication_factor) for s in missing[start : start + _CHUNK]]
            response = await admin.create_topics(chunk)
            for topic, code, *message in response.topic_errors:
                if code == 0:
                    created.append(topic)
                elif code != TopicAlreadyExistsError.errno:  # another provisioner won the race
                    error = for_code(code)
                    detail = message[0] if message and message[0] else error.description
                    refused.append(f"{topic}: {error.message} ({detail})")
    except KafkaError as exc:
        raise ProvisionError(
            f"cannot provision topics on {bootstrap}: {exc!r}; is the broker up and "
            "I247_BOOTSTRAP right?"
        ) from exc
    finally:
        await admin.close()
    if refused:
        raise ProvisionError(
            f"the broker refused {len(refused)} topic(s) at replication factor "
            f"{replication_factor} (I247_REPLICATION_FACTOR must not exceed the number of "
            "brokers): " + "; ".join(refused)
        )
    report = ProvisionReport(
        created=tuple(sorted(created)), existing=tuple(sorted(set(wanted) - set(created)))
    )
    log.info(
        "topics-provisioned",
        bootstrap=bootstrap,
        created=len(report.created),
        existing=len(report.existing),
    )
    return report
