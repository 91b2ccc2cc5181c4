"""Who can appear on the backbone, named by one string each.

A participant id is what the routing header carries as sender or recipient:

* an NCB is its country's ISO 3166 alpha-3 code: ``FRA``;
* a CCC hub is ``hub:<site>``: ``hub:lyon``, ``hub:buenos-aires``, ``hub:singapore``;
* a deployed response team is ``team:<slug>``: ``team:irt-2026-001``;
* the auditor is ``auditor``.

``ccc`` is a *logical* recipient: a message to the CCC is readable by every hub
(whichever is on duty) and by the auditor, so sealing expands it to those key holders.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

__all__ = [
    "AUDITOR",
    "CCC",
    "HUB_SITES",
    "ParticipantId",
    "ParticipantKind",
    "RecipientId",
    "hub_id",
    "kind_of",
    "site_of",
]

AUDITOR = "auditor"
CCC = "ccc"
HUB_SITES: tuple[str, ...] = ("lyon", "buenos-aires", "singapore")

_NCB = re.compile(r"^[A-Z]{3}$")
_HUB = re.compile(r"^hub:(lyon|buenos-aires|singapore)$")
_TEAM = re.compile(r"^team:[a-z0-9][a-z0-9-]{1,47}$")


class ParticipantKind(StrEnum):
    """The role a participant plays; the priority rules weigh senders by it."""

    NCB = "ncb"
    HUB = "hub"
    TEAM = "team"
    AUDITOR = "auditor"


def kind_of(participant: str) -> ParticipantKind:
    """Classify a participant id, or raise ``ValueError`` naming the accepted forms."""
    if _NCB.fullmatch(participant):
        return ParticipantKind.NCB
    if _HUB.fullmatch(participant):
        return ParticipantKind.HUB
    if _TEAM.fullmatch(participant):
        return ParticipantKind.TEAM
    if participant == AUDITOR:
        return ParticipantKind.AUDITOR
    raise ValueError(
        f"{participant!r} is not a participant id: use an ISO alpha-3 code (FRA), "
        "hub:<lyon|buenos-aires|singapore>, team:<slug> or auditor"
    )


def hub_id(site: str) -> str:
    """The participant id of the hub at ``site``."""
    if site not in HUB_SITES:
        raise ValueError(f"unknown hub site {site!r}; sites are {', '.join(HUB_SITES)}")
    return f"hub:{site}"


def site_of(hub: str) -> str:
    """The site of a hub participant id (``hub:lyon`` -> ``lyon``)."""
    if kind_of(hub) is not ParticipantKind.HUB:
        raise ValueError(f"{hub!r} is not a hub")
    return hub.removeprefix("hub:")


def _check_participant(value: str) -> str:
    kind_of(value)
    return value


def _check_recipient(value: str) -> str:
    if value == CCC:
        return value
    kind = kind_of(value)
    if kind is ParticipantKind.AUDITOR:
        raise ValueError("the auditor is never addressed directly; it reads what the CCC reads")
    if kind is ParticipantKind.HUB:
        raise ValueError("a hub is never addressed directly; address the CCC as 'ccc'")
    return value


ParticipantId = Annotated[str, AfterValidator(_check_participant)]
RecipientId = Annotated[str, AfterValidator(_check_recipient)]
