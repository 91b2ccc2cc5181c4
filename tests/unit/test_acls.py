"""The ACL set against the participants: who may read and write what on a Kafka cluster.

``allowed`` evaluates grants as Kafka's authorizer does for allow rules (a literal name
matches itself, a prefixed one every name it starts; READ or WRITE imply DESCRIBE), so the
checks below are about what a principal can do, not about how the rules are spelled.
"""

from __future__ import annotations

import shlex
from io import BytesIO

import pytest
from aiokafka.protocol.admin import CreateAclsRequest_v1

from brokers.acls import (
    Acl,
    Operation,
    Pattern,
    _CreateAcls,
    acl_set,
    kafka_acls_commands,
    ncb_group,
    principal,
)
from schemas.header import Precedence
from schemas.participants import HUB_SITES, hub_id
from schemas.registry import default_registry
from schemas.topics import TopicCatalog

TOPICS = TopicCatalog("i247")
NCBS = list(default_registry().codes())
GRANTS = acl_set(TOPICS, ncbs=NCBS, sites=HUB_SITES, teams=["team:imest-summer-games"])
EVERY_TOPIC = [
    *(spec.name for spec in TOPICS.core()),
    *(TOPICS.inbox(code) for code in NCBS),
    TOPICS.inbox("team:imest-summer-games"),
    TOPICS.replay("drill-1"),
]


BY_PRINCIPAL: dict[str, list[Acl]] = {}
for _grant in GRANTS:
    BY_PRINCIPAL.setdefault(_grant.principal, []).append(_grant)


def allowed(who: str, operation: Operation, resource: str, name: str) -> bool:
    implied = {operation} | (
        {Operation.READ, Operation.WRITE} if operation is Operation.DESCRIBE else set()
    )
    return any(
        g.operation in implied
        and g.resource == resource
        and (g.name == name if g.pattern is Pattern.LITERAL else name.startswith(g.name))
        for g in BY_PRINCIPAL.get(who, [])
    )


def can(who: str, operation: Operation) -> set[str]:
    return {t for t in EVERY_TOPIC if allowed(who, operation, "topic", t)}


def test_there_are_196_bureaus_each_with_its_own_principal() -> None:
    assert len(NCBS) == 196
    assert len({principal(code) for code in NCBS}) == 196


@pytest.mark.parametrize("code", NCBS)
def test_a_bureau_writes_inbound_and_reads_its_own_inbox_and_nothing_else(code: str) -> None:
    who = principal(code)
    assert can(who, Operation.WRITE) == {TOPICS.inbound}
    # its inbox, and the two journals its gateway folds: the lease journal (to refuse a
    # delivery from a hub outside its term) and the notices state (its notice board), and
    # the key directory (its peers' rotated and revoked keys)
    assert can(who, Operation.READ) == {
        TOPICS.inbox(code),
        TOPICS.leases,
        TOPICS.notices,
        TOPICS.keys,
    }
    assert can(who, Operation.CREATE) == set()
    assert allowed(who, Operation.READ, "group", ncb_group(TOPICS, code))
    assert {g.name for g in GRANTS if g.principal == who and g.resource == "group"} == {
        ncb_group(TOPICS, code)
    }


@pytest.mark.parametrize("site", HUB_SITES)
def test_a_hub_reads_intake_and_lanes_and_writes_lanes_journals_and_every_inbox(
    site: str,
) -> None:
    who = principal(hub_id(site))
    lanes = {TOPICS.lane(s, p) for s in HUB_SITES for p in Precedence}
    journals = {TOPICS.leases, TOPICS.heartbeat, TOPICS.control, TOPICS.notices}
    inboxes = {TOPICS.inbox(c) for c in NCBS} | {TOPICS.inbox("team:imest-summer-games")}
    assert can(who, Operation.READ) == {TOPICS.inbound, TOPICS.deadletter, TOPICS.keys} | (
        lanes | journals
    )
    assert can(who, Operation.WRITE) == lanes | journals | inboxes | {TOPICS.deadletter}
    assert can(who, Operation.CREATE) == {TOPICS.inbox("team:imest-summer-games")}
    assert not any(allowed(who, Operation.READ, "group", f"i247-ccc-{s}") for s in HUB_SITES)


def test_the_archiver_reads_every_topic_and_writes_only_its_tree_heads() -> None:
    who = principal("archiver")
    assert can(who, Operation.READ) == set(EVERY_TOPIC)
    assert can(who, Operation.WRITE) == {TOPICS.control}


def test_an_operator_provisions_and_reads_but_writes_only_replays_keys_and_journal() -> None:
    who = principal("operator")
    assert can(who, Operation.CREATE) == set(EVERY_TOPIC)
    # replays; `i247 keys rotate|revoke` (the key directory, the revocation's journal event)
    assert can(who, Operation.WRITE) == {TOPICS.replay("drill-1"), TOPICS.keys, TOPICS.control}


def test_a_team_reads_its_own_inbox_only() -> None:
    who = principal("team:imest-summer-games")
    assert who == "User:team-imest-summer-games"
    assert can(who, Operation.READ) == {TOPICS.inbox("team:imest-summer-games")}
    assert can(who, Operation.WRITE) == set()


def test_the_traffic_generator_is_granted_only_when_asked() -> None:
    assert not any(g.principal == "User:simulator" for g in GRANTS)
    with_sim = acl_set(TOPICS, ncbs=NCBS, sites=HUB_SITES, simulator=True)
    mine = {g for g in with_sim if g.principal == "User:simulator"}
    assert Acl("User:simulator", Operation.WRITE, "topic", TOPICS.inbound) in mine
    assert set(with_sim) - mine == set(acl_set(TOPICS, ncbs=NCBS, sites=HUB_SITES))


def test_the_set_follows_the_topic_prefix() -> None:
    other = acl_set(TopicCatalog("x"), ncbs=["FRA"], sites=["lyon"])
    assert all(g.name.startswith(("x.", "x-")) for g in other)


def test_kafka_acls_commands_merge_operations_per_principal_and_resource() -> None:
    lines = kafka_acls_commands(GRANTS, bootstrap="kafka-1:9092", command_config="/a.properties")
    assert len(lines) == len({(g.principal, g.resource, g.name, g.pattern) for g in GRANTS})
    hub = next(
        shlex.split(line)
        for line in lines
        if "User:hub-lyon" in line and "--topic i247.hub. " in line
    )
    assert hub[:5] == [
        "kafka-acls.sh",
        "--bootstrap-server",
        "kafka-1:9092",
        "--command-config",
        "/a.properties",
    ]
    assert [hub[i + 1] for i, w in enumerate(hub) if w == "--operation"] == ["Read", "Write"]
    assert hub[-2:] == ["--resource-pattern-type", "prefixed"]


def test_one_create_acls_request_carries_every_grant_in_kafka_s_codes() -> None:
    sample = [
        Acl("User:ncb-FRA", Operation.WRITE, "topic", "i247.inbound"),
        Acl("User:hub-lyon", Operation.READ, "topic", "i247.hub.", Pattern.PREFIXED),
        Acl("User:ncb-FRA", Operation.READ, "group", "i247-ncb-FRA"),
    ]
    struct = _CreateAcls(sample).build(CreateAclsRequest_v1)
    decoded = CreateAclsRequest_v1.decode(BytesIO(struct.encode()))
    assert [tuple(c) for c in decoded.creations] == [
        (2, "i247.inbound", 3, "User:ncb-FRA", "*", 4, 3),
        (2, "i247.hub.", 4, "User:hub-lyon", "*", 3, 3),
        (3, "i247-ncb-FRA", 3, "User:ncb-FRA", "*", 3, 3),
    ]
