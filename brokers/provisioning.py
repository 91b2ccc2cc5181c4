"""Idempotent topic provisioning: create what is missing, leave what exists.

Provisioning is explicit even though Tansu creates a topic on first produce: only here do
topics get their partition count, replication factor and ``cleanup.policy`` (Tansu keeps
every record whatever the policy; Kafka compacts). Running it twice, or two provisioners at
once, is safe: a topic that appears in between is reported as existing, not as an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code

from brokers.access import BrokerAccessRefused, access_refusal, process_security
from schemas.topics import TopicSpec

__all__ = [
    "BrokerUnreachable",
    "ProvisionError",
    "ProvisionReport",
    "TopicsNotProvisioned",
    "check_topics",
    "existing_topics",
    "missing_topics",
    "provision",
]

log = structlog.get_logger("i247.provision")

_CHUNK = 100  # topics per CreateTopics request: 196 inboxes fit in a few round trips


class ProvisionError(RuntimeError):
    """The broker refused to create topics; the message names them and the usual cause."""


class BrokerUnreachable(ConnectionError):
    """No broker answered at the bootstrap address within the deadline."""

    def __init__(self, bootstrap: str, cause: object) -> None:
        super().__init__(
            f"no Kafka broker answers at {bootstrap} ({cause}); start it, or set "
            "I247_BOOTSTRAP to the address of a running one (unset: the demo embeds its own)"
        )
        self.bootstrap = bootstrap


class TopicsNotProvisioned(LookupError):
    """The broker answers but lacks topics the process needs: nobody ran ``i247 provision``."""

    def __init__(self, bootstrap: str, missing: list[str]) -> None:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        super().__init__(
            f"{len(missing)} topic(s) missing on {bootstrap} ({shown}); run `i247 provision` "
            "with the same I247_BOOTSTRAP and I247_TOPIC_PREFIX first"
        )
        self.missing = missing


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


def missing_topics(existing: Iterable[str], wanted: Iterable[TopicSpec | str]) -> list[str]:
    """The wanted topic names the broker does not have, sorted (pure)."""
    present = set(existing)
    names = {w.name if isinstance(w, TopicSpec) else w for w in wanted}
    return sorted(names - present)


@contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs each refused connection itself; the exception we raise says it once."""
    logger = logging.getLogger("aiokafka")
    if logger.getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


async def existing_topics(
    bootstrap: str, *, timeout_s: float = 10.0, security: Mapping[str, Any] | None = None
) -> set[str]:
    """The topic names on the broker; ``BrokerUnreachable`` if it does not answer in time,
    ``BrokerAccessRefused`` (saying why) if it answers but refuses our TLS or SASL."""
    timeout_ms = max(1000, int(timeout_s * 1000))
    access = process_security() if security is None else security
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="i247-check", request_timeout_ms=timeout_ms, **access
    )
    with _quiet_aiokafka():
        try:
            async with asyncio.timeout(timeout_s):
                await admin.start()
                return set(await admin.list_topics())
        except (KafkaError, OSError, TimeoutError) as exc:
            refusal = await access_refusal(bootstrap, access, timeout_s=timeout_s)
            if refusal is not None:
                raise BrokerAccessRefused(refusal) from exc
            raise BrokerUnreachable(bootstrap, _cause(exc, timeout_s)) from exc
        finally:
            await admin.close()


def _cause(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, KafkaConnectionError):
        return "connection failed"  # aiokafka's text lists socket tuples; the address is named
    return str(exc) or type(exc).__name__


async def check_topics(
    bootstrap: str,
    wanted: Iterable[TopicSpec | str],
    *,
    timeout_s: float = 10.0,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Fail fast, before a process starts its work, if the broker or its topics are absent."""
    present = await existing_topics(bootstrap, timeout_s=timeout_s, security=security)
    missing = missing_topics(present, wanted)
    if missing:
        raise TopicsNotProvisioned(bootstrap, missing)


async def provision(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    replication_factor: int = 1,
    *,
    security: Mapping[str, Any] | None = None,
) -> ProvisionReport:
    """Create every topic in ``specs`` that the broker does not have yet.

    Raises ``ProvisionError`` naming each topic the broker refused (a replication factor
    above the number of brokers is the usual cause), ``BrokerUnreachable`` when
    ``bootstrap`` does not answer. ``security``: aiokafka TLS/SASL options (default: this
    process's ``I247_*``).
    """
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, not {replication_factor}")
    wanted = _unique(specs)
    created: list[str] = []
    refused: list[str] = []
    access = process_security() if security is None else security
    present = await existing_topics(bootstrap, security=access)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="i247-provision", **access)
    try:
        await admin.start()
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
    except (KafkaError, OSError) as exc:
        raise BrokerUnreachable(bootstrap, _cause(exc, 0)) from exc
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
