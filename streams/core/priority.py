"""Priority assessment: the CCC decides a message's precedence; the sender only declares it.

Theory of operation
-------------------
The routing header carries, in clear and signed, the sender's *declared* precedence, the
message type, the sender's id (hence its role: NCB, team or hub) and flags stating facts
(``threat-to-life``, ``mass-casualty``, ``wanted-person-hit``, ``stolen-document-hit``).
``assess_priority`` reads those and nothing else, so it is a pure function of the header.

``RULES`` is the whole policy, as data. Each rule names the message types and sender roles
it covers, an optional condition (any of some flags, or a correlation id), a **floor** and
a **ceiling**. The first rule that matches decides, like a firewall rule set, and::

    assessed = min(ceiling, max(declared, floor))      # on the FLASH > ... > ROUTINE scale

So a sender can never obtain more than the ceiling, whatever it declares (``capped``), and
a message that states a fact the CCC treats as urgent is raised to the floor even when its
sender under-declared it (``raised``): the flags choose the rule, the CCC the precedence.
Flags are declarations too, but signed, kept in the audit archive and limited by the rule
they select: a false ``threat-to-life`` on a bilateral message earns IMMEDIATE, not FLASH.

FLASH means "the CCC's operations room acts now", so it is reserved: an urgent request
with lives at risk (R1), the CCC's own hubs raising a life-at-risk alert or escalating a
wanted-person hit (R2, R3), and acknowledgements and receipts riding at the precedence of
what they answer (R4, R5). No message reaches FLASH without one of those stated reasons.

Acknowledgements and receipts: the CCC does not remember every message's precedence, so it
cannot check that an ack of a ROUTINE message is not declared FLASH. It keeps this simple:
an ack (or a hub's receipt) that names what it answers (``correlation_id``) rides at its
declared precedence, which the acknowledger copies from the ``i247-precedence`` of the
record it received, so a FLASH message's ack stops its 10-minute clock promptly; one that
names nothing rides ROUTINE. An over-declared ack is a tiny record, signed and audited.

Within each (message type, sender role) the candidate rules are ordered so that floors and
ceilings never increase down the list (checked at import). Hence adding a flag or a
correlation id, or declaring higher, never lowers the assessed precedence.

Worked example (docs/priority-rules.md is the operators' copy, checked by the tests):

* FRA sends DEU a ``message`` declared FLASH, no flags. Candidates for (message, NCB) are
  R6, R7, R8 (need flags), R14 (no condition): R14 decides, ceiling PRIORITY, floor
  ROUTINE; assessed PRIORITY, ``capped``.
* The same message flagged ``threat-to-life`` and declared ROUTINE: R6 decides (floor and
  ceiling IMMEDIATE); assessed IMMEDIATE, ``raised``. Sent as an ``urgent-request``
  instead, R1 decides: FLASH.
* ``hub:lyon`` sends a ``db-check-result`` flagged ``wanted-person-hit``: R3 decides
  (floor IMMEDIATE, ceiling FLASH): IMMEDIATE if declared ROUTINE, FLASH if declared FLASH.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel, ConfigDict

from schemas.header import HeaderFlag, MessageType, Precedence, RoutingHeader
from schemas.participants import ParticipantKind, kind_of

__all__ = [
    "RULES",
    "Assessment",
    "Rule",
    "RuleTableError",
    "assess_priority",
    "ceiling_for",
    "matching_rule",
]


class RuleTableError(Exception):
    """The rule table itself is inconsistent: our bug, raised at import, never at runtime."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: who and what it covers, its condition, floor and ceiling."""

    id: str
    title: str
    types: frozenset[MessageType]
    senders: frozenset[ParticipantKind]
    floor: Precedence
    ceiling: Precedence
    flags: frozenset[HeaderFlag] = frozenset()  # any one of these; empty: no flag needed
    correlated: bool = False  # True: needs a correlation id naming what it answers

    @property
    def conditional(self) -> bool:
        return bool(self.flags) or self.correlated

    def admits(self, flags: Iterable[HeaderFlag], correlated: bool) -> bool:
        """Whether a header with these flags and correlation meets the rule's condition."""
        if self.correlated and not correlated:
            return False
        return not self.flags or not self.flags.isdisjoint(flags)


_F, _I, _P, _R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE
_T = MessageType
_NCB, _TEAM, _HUB = ParticipantKind.NCB, ParticipantKind.TEAM, ParticipantKind.HUB

_SENDERS = frozenset({_NCB, _TEAM, _HUB})  # the auditor never sends: it falls to R18
_FIELD = frozenset({_NCB, _TEAM})
_LIFE = frozenset({HeaderFlag.THREAT_TO_LIFE, HeaderFlag.MASS_CASUALTY})
_WANTED = frozenset({HeaderFlag.WANTED_PERSON_HIT})
_STOLEN_DOC = frozenset({HeaderFlag.STOLEN_DOCUMENT_HIT})
# Types that report facts, so flags count on them. Flags are ignored on database queries
# (answered by machines in milliseconds; the hit rides on the result), notice requests
# (reviewed before they circulate) and acknowledgements or receipts (they ride with what
# they answer).
_ALERTS = frozenset({_T.MESSAGE, _T.DIFFUSION, _T.DB_CHECK_RESULT})
_REPORTS = _ALERTS | {_T.URGENT_REQUEST}


def _rule(
    rule_id: str,
    title: str,
    types: Iterable[MessageType],
    senders: Iterable[ParticipantKind],
    floor: Precedence,
    ceiling: Precedence,
    *,
    flags: frozenset[HeaderFlag] = frozenset(),
    correlated: bool = False,
) -> Rule:
    return Rule(
        rule_id, title, frozenset(types), frozenset(senders), floor, ceiling, flags, correlated
    )


# The policy. First match wins; R18 matches everything, so every header gets a rule.
# fmt: off
RULES: tuple[Rule, ...] = (
    # --- FLASH: the operations room acts now ---
    _rule("R1", "urgent request, life at risk", {_T.URGENT_REQUEST}, _SENDERS, _F, _F,
          flags=_LIFE),
    _rule("R2", "CCC alert, life at risk", _ALERTS, {_HUB}, _F, _F, flags=_LIFE),
    _rule("R3", "wanted-person hit from a hub", _REPORTS, {_HUB}, _I, _F, flags=_WANTED),
    _rule("R4", "acknowledgement naming its message", {_T.ACKNOWLEDGEMENT}, _SENDERS, _R, _F,
          correlated=True),
    _rule("R5", "delivery receipt from a hub", {_T.DELIVERY_RECEIPT}, {_HUB}, _R, _F,
          correlated=True),
    # --- flags from NCBs and teams: urgent, not FLASH (send an urgent request for that) ---
    _rule("R6", "life at risk, reported by an NCB or team", _ALERTS, _FIELD, _I, _I,
          flags=_LIFE),
    _rule("R7", "wanted-person hit from an NCB or team", _REPORTS, _FIELD, _I, _I,
          flags=_WANTED),
    _rule("R8", "stolen-document hit", _REPORTS, _SENDERS, _P, _I, flags=_STOLEN_DOC),
    # --- by message type and sender role alone ---
    _rule("R9", "urgent request", {_T.URGENT_REQUEST}, _SENDERS, _P, _I),
    _rule("R10", "diffusion", {_T.DIFFUSION}, _SENDERS, _R, _I),
    _rule("R11", "message from a team or hub", {_T.MESSAGE}, {_TEAM, _HUB}, _R, _I),
    _rule("R12", "database check from a team", {_T.DB_CHECK_QUERY}, {_TEAM}, _R, _I),
    _rule("R13", "database-check result from a hub", {_T.DB_CHECK_RESULT}, {_HUB}, _R, _I),
    _rule("R14", "message from an NCB", {_T.MESSAGE}, {_NCB}, _R, _P),
    _rule("R15", "database check from an NCB or hub", {_T.DB_CHECK_QUERY}, {_NCB, _HUB}, _R, _P),
    _rule("R16", "database-check result from an NCB or team", {_T.DB_CHECK_RESULT}, _FIELD,
          _R, _P),
    _rule("R17", "notice request", {_T.NOTICE_REQUEST}, _SENDERS, _R, _P),
    # --- everything else: uncorrelated acks and receipts, receipts not from a hub, the
    # auditor (who never sends) ---
    _rule("R18", "anything else", MessageType, ParticipantKind, _R, _R),
)
# fmt: on


def _outranks(a: Precedence, b: Precedence) -> bool:
    """True when ``a`` is strictly more urgent than ``b``."""
    return a.rank < b.rank


def _index(rules: tuple[Rule, ...]) -> dict[tuple[MessageType, ParticipantKind], tuple[Rule, ...]]:
    """Each (type, role)'s candidate rules, in table order; checks the table's invariants."""
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise RuleTableError(f"rule ids repeat: {ids}")
    for rule in rules:
        if _outranks(rule.floor, rule.ceiling):
            raise RuleTableError(f"{rule.id}: floor {rule.floor} above ceiling {rule.ceiling}")
    cells: dict[tuple[MessageType, ParticipantKind], tuple[Rule, ...]] = {}
    for message_type in MessageType:
        for role in ParticipantKind:
            cell = tuple(r for r in rules if message_type in r.types and role in r.senders)
            if not cell or cell[-1].conditional:
                raise RuleTableError(f"no unconditional rule for {message_type} from {role}")
            for rule, after in pairwise(cell):
                if _outranks(after.floor, rule.floor) or _outranks(after.ceiling, rule.ceiling):
                    raise RuleTableError(
                        f"{after.id} follows {rule.id} for {message_type} from {role} but "
                        "outranks it: a flag could then lower the precedence"
                    )
            cells[(message_type, role)] = cell
    return cells


_CELLS = _index(RULES)


class Assessment(BaseModel):
    """The CCC's decision on one message, with the rule that made it and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    precedence: Precedence
    declared: Precedence
    capped: bool  # the sender declared more than the rule allows
    raised: bool  # the sender declared less than the rule's floor
    rule: str  # the deciding rule's id, e.g. "R3"
    reason: str  # one line for the shell's log and the audit trail


def matching_rule(header: RoutingHeader) -> Rule:
    """The rule that decides ``header``'s precedence: the first one that matches."""
    cell = _CELLS[(header.message_type, kind_of(header.sender))]
    correlated = header.correlation_id is not None
    for rule in cell:
        if rule.admits(header.flags, correlated):
            return rule
    raise AssertionError("unreachable: every cell ends with an unconditional rule")


def ceiling_for(message_type: MessageType, role: ParticipantKind) -> Precedence:
    """The highest precedence a sender in ``role`` can obtain for ``message_type``, any flags."""
    return _CELLS[(message_type, role)][0].ceiling


def assess_priority(header: RoutingHeader) -> Assessment:
    """The precedence the CCC gives ``header``'s message (see the module's worked example)."""
    rule = matching_rule(header)
    declared = header.precedence
    precedence = declared
    if _outranks(rule.floor, precedence):
        precedence = rule.floor
    if _outranks(precedence, rule.ceiling):
        precedence = rule.ceiling
    capped = _outranks(declared, precedence)
    raised = _outranks(precedence, declared)
    if capped:
        verdict = f"capped at the ceiling {rule.ceiling.value}"
    elif raised:
        verdict = f"raised to the floor {rule.floor.value}"
    else:
        verdict = f"kept (floor {rule.floor.value}, ceiling {rule.ceiling.value})"
    return Assessment(
        precedence=precedence,
        declared=declared,
        capped=capped,
        raised=raised,
        rule=rule.id,
        reason=f"{rule.id} {rule.title}: declared {declared.value}, {verdict}",
    )
