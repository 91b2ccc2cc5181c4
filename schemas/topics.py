"""Topic names of the backbone, derived from one configurable prefix.

See ARCHITECTURE's topic table; ``TopicCatalog(prefix="i247")`` yields ``i247.inbound``,
``i247.hub.lyon.flash``, ``i247.ncb.FRA.inbox`` and so on. Replay topics
(``i247.replay.<name>``) are written by operators' replays and read by no processor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from schemas.header import Precedence
from schemas.participants import HUB_SITES, ParticipantKind, kind_of

__all__ = ["TopicCatalog", "TopicKind", "TopicSpec"]

_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$")


class TopicKind(StrEnum):
    INBOUND = "inbound"
    LANE = "lane"
    INBOX = "inbox"
    NOTICES = "notices"
    HEARTBEAT = "heartbeat"
    LEASES = "leases"
    CONTROL = "control"
    KEYS = "keys"
    DEADLETTER = "deadletter"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to provision: name, partitions, and whether readers treat it as compacted."""

    name: str
    kind: TopicKind
    partitions: int = 1
    compacted: bool = False


@dataclass(frozen=True, slots=True)
class TopicCatalog:
    """Every topic name, from the prefix; the only place topic names are spelled."""

    prefix: str = "i247"
    inbound_partitions: int = 4

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(
                f"topic prefix {self.prefix!r} must be 1-64 letters, digits, '_' or '-'"
            )

    @property
    def inbound(self) -> str:
        return f"{self.prefix}.inbound"

    @property
    def notices(self) -> str:
        return f"{self.prefix}.notices"

    @property
    def heartbeat(self) -> str:
        return f"{self.prefix}.hub.heartbeat"

    @property
    def leases(self) -> str:
        """The lease journal: who owns intake and each lane, one partition, one order."""
        return f"{self.prefix}.hub.leases"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def keys(self) -> str:
        """The key directory: each participant's key set, signed by the CCC (compacted)."""
        return f"{self.prefix}.keys"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def lane(self, site: str, precedence: Precedence) -> str:
        """The lane topic for one hub and one precedence."""
        if site not in HUB_SITES:
            raise ValueError(f"unknown hub site {site!r}")
        return f"{self.prefix}.hub.{site}.{precedence.lane}"

    def lanes(self) -> list[str]:
        """Every lane topic, hub by hub, most urgent first."""
        return [self.lane(site, p) for site in HUB_SITES for p in Precedence]

    @property
    def replay_prefix(self) -> str:
        """What every replay topic's name starts with: ``i247.replay.``."""
        return f"{self.prefix}.replay."

    def replay(self, name: str) -> str:
        """The topic an operator's replay named ``name`` publishes to; no processor reads it."""
        if not _PREFIX.match(name):
            raise ValueError(
                f"replay name {name!r} must be 1-64 letters, digits, '_' or '-' (no dots)"
            )
        return f"{self.replay_prefix}{name}"

    def inbox(self, participant: str) -> str:
        """The inbox topic of an NCB or team; hubs and the auditor have none."""
        kind = kind_of(participant)
        if kind is ParticipantKind.NCB:
            return f"{self.prefix}.ncb.{participant}.inbox"
        if kind is ParticipantKind.TEAM:
            return f"{self.prefix}.team.{participant.removeprefix('team:')}.inbox"
        raise ValueError(f"{participant!r} has no inbox; only NCBs and teams do")

    def core(self) -> list[TopicSpec]:
        """The topics that exist whatever the membership: inbound, lanes, journals."""
        specs = [TopicSpec(self.inbound, TopicKind.INBOUND, partitions=self.inbound_partitions)]
        specs += [TopicSpec(name, TopicKind.LANE) for name in self.lanes()]
        specs += [
            TopicSpec(self.notices, TopicKind.NOTICES, compacted=True),
            TopicSpec(self.heartbeat, TopicKind.HEARTBEAT, compacted=True),
            TopicSpec(self.leases, TopicKind.LEASES),
            TopicSpec(self.control, TopicKind.CONTROL),
            TopicSpec(self.keys, TopicKind.KEYS, compacted=True),
            TopicSpec(self.deadletter, TopicKind.DEADLETTER),
        ]
        return specs

    def inboxes(self, participants: list[str]) -> list[TopicSpec]:
        return [TopicSpec(self.inbox(p), TopicKind.INBOX) for p in participants]
