"""Who may do what on a Kafka cluster, derived from the participants and the topic catalog.

A pure function (``acl_set``) returns every grant as an ``Acl`` (principal, operation,
resource type, resource name, pattern); ``kafka_acls_commands`` renders them for
``kafka-acls.sh`` (one invocation per principal and resource: for reading, or by hand), and
``apply_acls`` creates them all in one CreateAcls request, which compose's one-shot ``acls``
service does (``i247 acls --apply``). Kafka denies whatever is not granted
(``allow.everyone.if.no.acl.found=false``), so this set *is* the access policy:

* a bureau (``User:ncb-FRA``) writes the inbound topic and reads its own inbox (with its
  own consumer group ``<prefix>.client.FRA``); it also reads the lease journal, which its
  gateway folds to refuse deliveries from a hub outside its term, and the notices state
  its notice board keeps, and the key directory (peers' rotated keys). Nothing else: no
  other inbox, no lane, no journal write;
* a hub (``User:hub-lyon``) reads the inbound topic, the lanes and journals, writes lanes,
  journals, inboxes and dead letters, and creates team inboxes; it joins no consumer group
  (leases, not group membership, say what it works on);
* the archiver (``User:archiver``, the auditor's process) reads every topic and writes
  signed tree heads to the control journal;
* an operator (``User:operator``: ``i247 provision``, replays, ``i247 keys rotate|revoke``)
  creates and describes topics, reads them all, and writes replay topics, the key
  directory and (for revocations) the control journal;
* a response team (``User:team-<name>``), when listed, reads its own inbox only;
* the compose cluster's traffic generator (``User:simulator``, all 196 bureaus in one
  process, with the books it keeps) is granted only with ``simulator=True``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from schemas.participants import hub_id
from schemas.topics import TopicCatalog

__all__ = [
    "Acl",
    "AclError",
    "Operation",
    "Pattern",
    "acl_set",
    "apply_acls",
    "kafka_acls_commands",
    "ncb_group",
    "principal",
]


class Operation(StrEnum):
    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DESCRIBE = "Describe"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Acl(NamedTuple):
    """One allow rule: ``principal`` may ``operation`` on ``resource`` ``name`` (``pattern``)."""

    principal: str
    operation: Operation
    resource: str  # "topic" or "group" (kafka-acls.sh's option names)
    name: str
    pattern: Pattern = Pattern.LITERAL


def principal(participant: str) -> str:
    """The Kafka principal of a participant or role.

    ``FRA`` -> ``User:ncb-FRA``, ``hub:lyon`` -> ``User:hub-lyon``, ``team:x`` -> ``User:team-x``.
    """
    if participant.startswith(("hub:", "team:")):
        return "User:" + participant.replace(":", "-", 1)
    if participant in ("archiver", "operator", "simulator"):
        return f"User:{participant}"
    return f"User:ncb-{participant}"


def ncb_group(topics: TopicCatalog, code: str) -> str:
    """The consumer group a bureau's client reads its inbox with (``agents.ncb.client``)."""
    return f"{topics.prefix}.client.{code}"


def _read(who: str, *names: str) -> list[Acl]:
    return [Acl(who, Operation.READ, "topic", n) for n in names]


def _write(who: str, *names: str) -> list[Acl]:
    return [Acl(who, Operation.WRITE, "topic", n) for n in names]


def _ncb(topics: TopicCatalog, code: str) -> list[Acl]:
    who = principal(code)
    return [
        *_write(who, topics.inbound),
        *_read(who, topics.inbox(code), topics.leases, topics.notices, topics.keys),
        Acl(who, Operation.READ, "group", ncb_group(topics, code)),
    ]


def _hub(topics: TopicCatalog, site: str) -> list[Acl]:
    who = principal(hub_id(site))
    hub_prefix = f"{topics.prefix}.hub."  # the lanes, the lease journal and heartbeats
    journals = (topics.control, topics.notices, topics.deadletter)
    inboxes = (f"{topics.prefix}.ncb.", f"{topics.prefix}.team.")
    return [
        *_read(who, topics.inbound, topics.keys, *journals),
        *_write(who, *journals),
        Acl(who, Operation.READ, "topic", hub_prefix, Pattern.PREFIXED),
        Acl(who, Operation.WRITE, "topic", hub_prefix, Pattern.PREFIXED),
        *(Acl(who, Operation.WRITE, "topic", p, Pattern.PREFIXED) for p in inboxes),
        Acl(who, Operation.CREATE, "topic", inboxes[1], Pattern.PREFIXED),
    ]


def _everything(topics: TopicCatalog) -> str:
    return f"{topics.prefix}."


def acl_set(
    topics: TopicCatalog,
    *,
    ncbs: Iterable[str],
    sites: Iterable[str],
    teams: Iterable[str] = (),
    simulator: bool = False,
) -> list[Acl]:
    """Every grant of a deployment, sorted; duplicates removed."""
    grants: list[Acl] = []
    codes = list(ncbs)
    for code in codes:
        grants += _ncb(topics, code)
    for site in sites:
        grants += _hub(topics, site)
    for team in teams:
        grants += _read(principal(team), topics.inbox(team))
    archiver = principal("archiver")
    grants += [
        Acl(archiver, Operation.READ, "topic", _everything(topics), Pattern.PREFIXED),
        *_write(archiver, topics.control),
    ]
    operator = principal("operator")
    grants += [
        Acl(operator, op, "topic", _everything(topics), Pattern.PREFIXED)
        for op in (Operation.CREATE, Operation.DESCRIBE, Operation.READ)
    ]
    grants.append(Acl(operator, Operation.WRITE, "topic", topics.replay_prefix, Pattern.PREFIXED))
    grants += _write(operator, topics.keys, topics.control)
    if simulator:
        sim = principal("simulator")
        grants += [
            *_write(sim, topics.inbound),
            *_read(sim, topics.leases, topics.notices, topics.keys, topics.control),
            *_read(sim, topics.deadletter),
            Acl(sim, Operation.READ, "topic", f"{topics.prefix}.ncb.", Pattern.PREFIXED),
            Acl(sim, Operation.READ, "topic", f"{topics.prefix}.hub.", Pattern.PREFIXED),
            Acl(sim, Operation.READ, "group", f"{topics.prefix}-ncb-gateway"),
        ]
    return sorted(set(grants))


def kafka_acls_commands(
    grants: Iterable[Acl], *, bootstrap: str, command_config: str | None = None
) -> list[str]:
    """``kafka-acls.sh --add`` command lines: one per principal and resource, ops merged."""
    merged: dict[tuple[str, str, str, Pattern], list[Operation]] = {}
    for acl in grants:
        merged.setdefault((acl.principal, acl.resource, acl.name, acl.pattern), []).append(
            acl.operation
        )
    lines = []
    for (who, resource, name, pattern), operations in sorted(merged.items()):
        words = ["kafka-acls.sh", "--bootstrap-server", bootstrap]
        if command_config:
            words += ["--command-config", command_config]
        words += ["--add", "--allow-principal", who]
        for operation in sorted(operations):
            words += ["--operation", operation.value]
        words += [f"--{resource}", name, "--resource-pattern-type", pattern.value]
        lines.append(shlex.join(words))
    return lines


_RESOURCE_CODES = {"topic": 2, "group": 3}
_PATTERN_CODES = {Pattern.LITERAL: 3, Pattern.PREFIXED: 4}
_OPERATION_CODES = {
    Operation.READ: 3,
    Operation.WRITE: 4,
    Operation.CREATE: 5,
    Operation.DESCRIBE: 8,
}
_ALLOW = 3


class AclError(RuntimeError):
    """The cluster refused some grants; the message lists them with the broker's reasons."""


class _CreateAcls(CreateAclsRequest):  # type: ignore[misc]
    """CreateAcls (v1, with pattern types) carrying every grant in one request."""

    def __init__(self, grants: Sequence[Acl]) -> None:
        self._grants = list(grants)

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION < 1:
            raise AclError("the broker speaks CreateAcls v0 only: prefixed ACLs need Kafka 2.0+")
        return request_struct_class(
            [
                (
                    _RESOURCE_CODES[g.resource],
                    g.name,
                    _PATTERN_CODES[g.pattern],
                    g.principal,
                    "*",
                    _OPERATION_CODES[g.operation],
                    _ALLOW,
                )
                for g in self._grants
            ]
        )


async def apply_acls(bootstrap: str, grants: Sequence[Acl], *, security: Mapping[str, Any]) -> int:
    """Create ``grants`` on the cluster (creating an existing ACL is a no-op); return how many.

    Connects as an administrator (a super user, e.g. compose's ``admin``).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="i247-acls", **security)
    await admin.start()
    try:
        response = await admin._send_request(_CreateAcls(grants))
    finally:
        await admin.close()
    refused = [
        f"{grant.principal} {grant.operation.value} {grant.resource} {grant.name}: "
        f"error {code} {message or ''}".strip()
        for grant, (code, message) in zip(grants, response.creation_responses, strict=True)
        if code != 0
    ]
    if refused:
        raise AclError(
            f"{len(refused)} of {len(grants)} ACLs refused (is the principal a super user, "
            f"and is an authorizer configured?): " + "; ".join(refused[:10])
        )
    return len(grants)
