"""assess_priority: the CCC decides the precedence; the sender only declares it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.header import HeaderFlag, MessageType, Precedence, RoutingHeader
from schemas.participants import ParticipantKind, kind_of
from streams.core import priority
from streams.core.priority import (
    RULES,
    Rule,
    RuleTableError,
    assess_priority,
    ceiling_for,
    matching_rule,
)
from tests.unit.factories import make_header

F, IMM, P, R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE
TTL, MC = HeaderFlag.THREAT_TO_LIFE, HeaderFlag.MASS_CASUALTY
WPH, SDH = HeaderFlag.WANTED_PERSON_HIT, HeaderFlag.STOLEN_DOCUMENT_HIT
T = MessageType
TEAM, HUB = "team:irt-2026-001", "hub:lyon"
DOC = Path(__file__).resolve().parents[2] / "docs" / "priority-rules.md"
LIFE_SAVING_FLAGS = {TTL, MC, WPH}


def header(
    sender: str = "FRA",
    message_type: MessageType = T.MESSAGE,
    declared: Precedence = R,
    flags: tuple[HeaderFlag, ...] = (),
    correlated: bool = False,
) -> RoutingHeader:
    extra: dict[str, Any] = {"correlation_id": "6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de"}
    return make_header(
        sender=sender,
        message_type=message_type,
        precedence=declared,
        flags=list(flags),
        **(extra if correlated else {}),
    )


# sender, type, declared, flags, correlated -> assessed, rule
CASES: list[tuple[str, MessageType, Precedence, tuple[HeaderFlag, ...], bool, Precedence, str]] = [
    ("FRA", T.URGENT_REQUEST, R, (TTL,), False, F, "R1"),
    ("FRA", T.URGENT_REQUEST, IMM, (MC,), False, F, "R1"),
    (TEAM, T.URGENT_REQUEST, P, (MC, SDH), False, F, "R1"),
    (HUB, T.URGENT_REQUEST, F, (TTL,), False, F, "R1"),
    (HUB, T.DIFFUSION, R, (MC,), False, F, "R2"),
    (HUB, T.DB_CHECK_RESULT, P, (TTL, WPH), False, F, "R2"),
    (HUB, T.DB_CHECK_RESULT, R, (WPH,), False, IMM, "R3"),
    (HUB, T.DB_CHECK_RESULT, F, (WPH,), False, F, "R3"),
    (HUB, T.MESSAGE, F, (WPH, SDH), False, F, "R3"),
    ("FRA", T.ACKNOWLEDGEMENT, F, (), True, F, "R4"),
    ("FRA", T.ACKNOWLEDGEMENT, R, (), True, R, "R4"),
    (TEAM, T.ACKNOWLEDGEMENT, IMM, (TTL,), True, IMM, "R4"),  # flags count for nothing
    (HUB, T.DELIVERY_RECEIPT, F, (), True, F, "R5"),
    ("FRA", T.MESSAGE, F, (TTL,), False, IMM, "R6"),  # not FLASH: that takes an urgent request
    ("FRA", T.MESSAGE, R, (MC,), False, IMM, "R6"),
    (TEAM, T.DIFFUSION, R, (TTL, WPH), False, IMM, "R6"),
    ("FRA", T.DB_CHECK_RESULT, F, (WPH,), False, IMM, "R7"),
    ("FRA", T.URGENT_REQUEST, R, (WPH,), False, IMM, "R7"),
    ("FRA", T.MESSAGE, R, (SDH,), False, P, "R8"),
    (HUB, T.MESSAGE, F, (SDH,), False, IMM, "R8"),
    ("FRA", T.URGENT_REQUEST, R, (), False, P, "R9"),
    ("FRA", T.URGENT_REQUEST, F, (), False, IMM, "R9"),
    ("FRA", T.DIFFUSION, F, (), False, IMM, "R10"),
    ("FRA", T.DIFFUSION, R, (), False, R, "R10"),
    (TEAM, T.MESSAGE, F, (), False, IMM, "R11"),
    (HUB, T.MESSAGE, F, (), False, IMM, "R11"),  # hubs too need a stated reason for FLASH
    (TEAM, T.DB_CHECK_QUERY, F, (), False, IMM, "R12"),
    (HUB, T.DB_CHECK_RESULT, IMM, (), False, IMM, "R13"),
    ("FRA", T.MESSAGE, R, (), False, R, "R14"),
    ("FRA", T.MESSAGE, P, (), False, P, "R14"),
    ("FRA", T.MESSAGE, F, (), False, P, "R14"),  # a routine message declared FLASH
    ("FRA", T.DB_CHECK_QUERY, F, (TTL,), False, P, "R15"),  # flags ignored on queries
    (HUB, T.DB_CHECK_QUERY, IMM, (), False, P, "R15"),
    (TEAM, T.DB_CHECK_RESULT, F, (), False, P, "R16"),
    ("FRA", T.NOTICE_REQUEST, F, (MC,), False, P, "R17"),  # reviewed, never urgent in transit
    ("FRA", T.ACKNOWLEDGEMENT, F, (), False, R, "R18"),  # names nothing: stops no clock
    ("FRA", T.DELIVERY_RECEIPT, F, (), True, R, "R18"),  # receipts are the CCC's to issue
    (HUB, T.DELIVERY_RECEIPT, F, (), False, R, "R18"),
    ("auditor", T.MESSAGE, F, (TTL,), False, R, "R18"),  # the auditor never sends
]


@pytest.mark.parametrize(
    ("sender", "message_type", "declared", "flags", "correlated", "expected", "rule"), CASES
)
def test_rule_table(
    sender: str,
    message_type: MessageType,
    declared: Precedence,
    flags: tuple[HeaderFlag, ...],
    correlated: bool,
    expected: Precedence,
    rule: str,
) -> None:
    assessment = assess_priority(header(sender, message_type, declared, flags, correlated))
    assert (assessment.precedence, assessment.rule) == (expected, rule)


def test_the_cases_above_exercise_every_rule() -> None:
    assert {case[-1] for case in CASES} == {rule.id for rule in RULES}


def test_a_routine_message_declared_flash_by_an_ncb_is_capped_to_priority() -> None:
    assessment = assess_priority(header(declared=F))
    assert assessment.precedence is P
    assert assessment.declared is F
    assert assessment.capped
    assert not assessment.raised


def test_an_under_declared_message_with_a_life_at_risk_is_raised_not_capped() -> None:
    assessment = assess_priority(header(message_type=T.URGENT_REQUEST, flags=(TTL,)))
    assert assessment.precedence is F
    assert assessment.raised
    assert not assessment.capped


def test_a_declaration_within_the_rule_is_kept_as_is() -> None:
    assessment = assess_priority(header(declared=P))
    assert assessment.precedence is P
    assert not assessment.capped
    assert not assessment.raised


def test_the_reason_names_the_rule_the_declaration_and_the_ceiling() -> None:
    reason = assess_priority(header(declared=F)).reason
    assert reason == "R14 message from an NCB: declared FLASH, capped at the ceiling PRIORITY"


def test_the_assessment_is_frozen() -> None:
    assessment = assess_priority(header())
    with pytest.raises(ValueError, match="frozen"):
        assessment.precedence = F  # type: ignore[misc]


def test_only_the_header_fields_the_rules_name_matter() -> None:
    a = header(declared=F, flags=(SDH,))
    b = a.model_copy(update={"recipients": ["ITA", "ccc"], "case_id": "case-7", "language": "fr"})
    assert assess_priority(a) == assess_priority(b)


@pytest.mark.parametrize(
    ("message_type", "role", "ceiling"),
    [
        (T.MESSAGE, ParticipantKind.NCB, IMM),
        (T.MESSAGE, ParticipantKind.HUB, F),
        (T.URGENT_REQUEST, ParticipantKind.NCB, F),
        (T.DB_CHECK_QUERY, ParticipantKind.TEAM, IMM),
        (T.NOTICE_REQUEST, ParticipantKind.HUB, P),
        (T.DELIVERY_RECEIPT, ParticipantKind.NCB, R),
        (T.ACKNOWLEDGEMENT, ParticipantKind.TEAM, F),
        (T.MESSAGE, ParticipantKind.AUDITOR, R),
    ],
)
def test_ceiling_for_is_the_most_a_role_can_obtain_with_any_flags(
    message_type: MessageType, role: ParticipantKind, ceiling: Precedence
) -> None:
    assert ceiling_for(message_type, role) is ceiling


# --- the table's own invariants (checked at import; these show the guard works) ---


def rule(rule_id: str, floor: Precedence, ceiling: Precedence, **kw: Any) -> Rule:
    everything = frozenset(MessageType), frozenset(ParticipantKind)
    return Rule(rule_id, rule_id, *everything, floor, ceiling, **kw)


def test_a_table_whose_later_rule_outranks_an_earlier_one_is_refused() -> None:
    bad = (rule("A", R, IMM, flags=frozenset({TTL})), rule("B", P, P))
    with pytest.raises(RuleTableError, match="B follows A"):
        priority._index(bad)


def test_a_table_without_a_final_unconditional_rule_is_refused() -> None:
    with pytest.raises(RuleTableError, match="no unconditional rule"):
        priority._index((rule("A", R, F, correlated=True),))


def test_a_rule_with_its_floor_above_its_ceiling_is_refused() -> None:
    with pytest.raises(RuleTableError, match="floor"):
        priority._index((rule("A", F, R),))


def test_rule_ids_are_unique() -> None:
    with pytest.raises(RuleTableError, match="repeat"):
        priority._index((rule("A", R, R), rule("A", R, R)))


# --- properties over every header the rules can see ---

SENDERS = ["FRA", "DEU", TEAM, "team:imest-paris", HUB, "hub:singapore", "auditor"]
headers = st.builds(
    header,
    sender=st.sampled_from(SENDERS),
    message_type=st.sampled_from(list(MessageType)),
    declared=st.sampled_from(list(Precedence)),
    flags=st.sets(st.sampled_from(list(HeaderFlag))).map(lambda s: tuple(sorted(s))),
    correlated=st.booleans(),
)


@given(headers)
def test_never_above_the_ceiling_of_the_senders_role_and_type(h: RoutingHeader) -> None:
    assessed = assess_priority(h).precedence
    assert assessed.rank >= matching_rule(h).ceiling.rank
    assert assessed.rank >= ceiling_for(h.message_type, kind_of(h.sender)).rank


@given(headers)
def test_never_below_the_floor_nor_below_the_declaration_unless_capped(h: RoutingHeader) -> None:
    assessment = assess_priority(h)
    assert assessment.precedence.rank <= matching_rule(h).floor.rank
    assert assessment.capped == (assessment.precedence.rank > h.precedence.rank)
    assert assessment.raised == (assessment.precedence.rank < h.precedence.rank)


@given(headers)
def test_flash_always_has_a_stated_reason(h: RoutingHeader) -> None:
    if assess_priority(h).precedence is F:
        answers = h.message_type in {T.ACKNOWLEDGEMENT, T.DELIVERY_RECEIPT}
        assert (answers and h.correlation_id) or LIFE_SAVING_FLAGS & set(h.flags)
        assert kind_of(h.sender) is ParticipantKind.HUB or h.message_type in {
            T.URGENT_REQUEST,
            T.ACKNOWLEDGEMENT,
        }


@given(headers, st.sampled_from(list(HeaderFlag)))
def test_adding_a_flag_never_lowers_the_precedence(h: RoutingHeader, flag: HeaderFlag) -> None:
    flagged = h.model_copy(update={"flags": sorted({*h.flags, flag})})
    assert assess_priority(flagged).precedence.rank <= assess_priority(h).precedence.rank


@given(headers, st.sampled_from(list(Precedence)))
def test_declaring_higher_never_lowers_the_precedence(h: RoutingHeader, other: Precedence) -> None:
    low, high = sorted([h.precedence, other], key=lambda p: -p.rank)
    at_low = assess_priority(h.model_copy(update={"precedence": low})).precedence
    at_high = assess_priority(h.model_copy(update={"precedence": high})).precedence
    assert at_high.rank <= at_low.rank


# --- the operators' document says what the code does ---

KINDS = {
    ParticipantKind.NCB: "NCB",
    ParticipantKind.TEAM: "team",
    ParticipantKind.HUB: "hub",
    ParticipantKind.AUDITOR: "auditor",
}


def doc_row(rule: Rule) -> str:
    types = (
        "any"
        if rule.types == frozenset(MessageType)
        else ", ".join(t.value for t in MessageType if t in rule.types)
    )
    senders = (
        "anyone"
        if rule.senders == frozenset(ParticipantKind)
        else ", ".join(label for kind, label in KINDS.items() if kind in rule.senders)
    )
    if rule.flags:
        when = " or ".join(f"`{f.value}`" for f in HeaderFlag if f in rule.flags)
    elif rule.correlated:
        when = "names its message (`correlation_id`)"
    else:
        when = "–"
    cells = [rule.id, rule.title, types, senders, when, rule.floor.value, rule.ceiling.value]
    return "| " + " | ".join(cells) + " |"


def doc_table_rows(first_cell: str) -> list[list[str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if re.match(rf"^\| {first_cell} \|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_documented_rule_table_is_the_code_table_row_for_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = [line for line in text.splitlines() if re.match(r"^\| R\d+ \|", line)]
    assert documented == [doc_row(rule) for rule in RULES]


def example_rows() -> list[list[str]]:
    return doc_table_rows(r"(FRA|team:[a-z0-9-]+|hub:[a-z-]+)")


def test_the_document_has_examples() -> None:
    assert len(example_rows()) >= 10


@pytest.mark.parametrize("row", example_rows(), ids=lambda row: " ".join(row[:3]))
def test_every_documented_example_is_what_the_code_decides(row: list[str]) -> None:
    sender, message_type, declared, flags, correlated, assessed, rule_id = row
    h = header(
        sender,
        MessageType(message_type),
        Precedence(declared),
        tuple(HeaderFlag(f.strip(" `")) for f in flags.split(",") if f.strip() != "–"),
        correlated == "yes",
    )
    assessment = assess_priority(h)
    word, *note = assessed.split()
    assert assessment.precedence is Precedence(word)
    assert assessment.rule == rule_id
    assert assessment.capped == (note == ["(capped)"])
    assert assessment.raised == (note == ["(raised)"])
