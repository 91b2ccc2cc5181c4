"""Priority assessment: the CCC decides a message's precedence; the sender only declares it.

Rules as data (docs/priority-rules.md is the operators' copy, checked against this table):

* every (message type, sender role) has a **ceiling**: the highest precedence that sender
  may obtain for that type, whatever it declares;
* some header flags set a **floor**: the precedence is raised to it, but never above the
  ceiling;
* the result is ``max(declared, floor)`` capped at the ceiling.

Worked example: an NCB sends a bilateral ``message`` declared FLASH with no flags. Ceiling
for (message, NCB) is PRIORITY, floor ROUTINE: assessed PRIORITY, ``capped=True``, rule
``R1``. The same message flagged ``wanted-person-hit`` and ``threat-to-life`` has floor
FLASH and ceiling FLASH (rule ``F1`` lifts the ceiling): assessed FLASH.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.header import HeaderFlag, MessageType, Precedence, RoutingHeader
from schemas.participants import ParticipantKind, kind_of

__all__ = ["CEILINGS", "FLAG_RULES", "Assessment", "assess_priority"]

P = Precedence
N, T, H = ParticipantKind.NCB, ParticipantKind.TEAM, ParticipantKind.HUB

# (type, role) -> (rule id, ceiling)
CEILINGS: dict[tuple[MessageType, ParticipantKind], tuple[str, Precedence]] = {
    (MessageType.MESSAGE, N): ("R1", P.PRIORITY),
    (MessageType.MESSAGE, T): ("R2", P.IMMEDIATE),
    (MessageType.MESSAGE, H): ("R3", P.FLASH),
    (MessageType.DIFFUSION, N): ("R4", P.IMMEDIATE),
    (MessageType.DIFFUSION, T): ("R4", P.IMMEDIATE),
    (MessageType.DIFFUSION, H): ("R3", P.FLASH),
    (MessageType.URGENT_REQUEST, N): ("R5", P.IMMEDIATE),
    (MessageType.URGENT_REQUEST, T): ("R5", P.IMMEDIATE),
    (MessageType.URGENT_REQUEST, H): ("R3", P.FLASH),
    (MessageType.DB_CHECK_QUERY, N): ("R6", P.PRIORITY),
    (MessageType.DB_CHECK_QUERY, T): ("R6", P.IMMEDIATE),
    (MessageType.DB_CHECK_QUERY, H): ("R6", P.IMMEDIATE),
    (MessageType.DB_CHECK_RESULT, N): ("R7", P.PRIORITY),
    (MessageType.DB_CHECK_RESULT, T): ("R7", P.PRIORITY),
    (MessageType.DB_CHECK_RESULT, H): ("R3", P.FLASH),
    (MessageType.NOTICE_REQUEST, N): ("R8", P.PRIORITY),
    (MessageType.NOTICE_REQUEST, T): ("R8", P.PRIORITY),
    (MessageType.NOTICE_REQUEST, H): ("R8", P.PRIORITY),
    (MessageType.ACKNOWLEDGEMENT, N): ("R9", P.FLASH),
    (MessageType.ACKNOWLEDGEMENT, T): ("R9", P.FLASH),
    (MessageType.ACKNOWLEDGEMENT, H): ("R9", P.FLASH),
    (MessageType.DELIVERY_RECEIPT, N): ("R10", P.ROUTINE),
    (MessageType.DELIVERY_RECEIPT, T): ("R10", P.ROUTINE),
    (MessageType.DELIVERY_RECEIPT, H): ("R9", P.FLASH),
}

# flag -> (rule id, floor, ceiling it lifts to for the types it applies to)
FLAG_RULES: dict[HeaderFlag, tuple[str, Precedence, Precedence]] = {
    HeaderFlag.THREAT_TO_LIFE: ("F1", P.FLASH, P.FLASH),
    HeaderFlag.MASS_CASUALTY: ("F2", P.FLASH, P.FLASH),
    HeaderFlag.WANTED_PERSON_HIT: ("F3", P.IMMEDIATE, P.IMMEDIATE),
    HeaderFlag.STOLEN_DOCUMENT_HIT: ("F4", P.PRIORITY, P.PRIORITY),
}
# Flags count only on these types: a routine DB result cannot claim a threat to life.
FLAGGABLE = frozenset(
    {
        MessageType.MESSAGE,
        MessageType.DIFFUSION,
        MessageType.URGENT_REQUEST,
        MessageType.DB_CHECK_RESULT,
    }
)


class Assessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    precedence: Precedence
    declared: Precedence
    capped: bool
    rule: str
    reason: str


def _higher(a: Precedence, b: Precedence) -> Precedence:
    return a if a.rank <= b.rank else b


def assess_priority(header: RoutingHeader) -> Assessment:
    """The precedence the CCC gives ``header``'s message (see the module docstring)."""
    role = kind_of(header.sender)
    if role not in (N, T, H):
        role = N  # the auditor never sends; treat anything else as an NCB would be
    rule, ceiling = CEILINGS[(header.message_type, role)]
    floor = P.ROUTINE
    rules = [rule]
    if header.message_type in FLAGGABLE:
        for flag in header.flags:
            flag_rule, flag_floor, lifted = FLAG_RULES[flag]
            floor = _higher(floor, flag_floor)
            ceiling = _higher(ceiling, lifted)
            rules.append(flag_rule)
    wanted = _higher(header.precedence, floor)
    precedence = wanted if wanted.rank >= ceiling.rank else ceiling
    capped = header.precedence.rank < precedence.rank
    reason = (
        f"declared {header.precedence.value}, ceiling {ceiling.value} for "
        f"{header.message_type.value} from {role.value}, floor {floor.value}"
    )
    return Assessment(
        precedence=precedence,
        declared=header.precedence,
        capped=capped,
        rule="+".join(rules),
        reason=reason,
    )
