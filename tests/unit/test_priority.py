"""assess_priority: the CCC decides the precedence; the sender only declares it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.header import HeaderFlag, MessageType, Precedence
from streams.priority import CEILINGS, FLAG_RULES, assess_priority
from tests.unit.factories import make_header

F, IMM, P, R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE


@pytest.mark.parametrize(
    ("sender", "message_type", "declared", "flags", "expected"),
    [
        ("FRA", MessageType.MESSAGE, R, [], R),
        ("FRA", MessageType.MESSAGE, F, [], P),  # over-declared routine traffic is capped
        ("FRA", MessageType.MESSAGE, F, [HeaderFlag.THREAT_TO_LIFE], F),
        ("FRA", MessageType.MESSAGE, R, [HeaderFlag.WANTED_PERSON_HIT], IMM),
        ("FRA", MessageType.URGENT_REQUEST, IMM, [], IMM),
        ("FRA", MessageType.URGENT_REQUEST, F, [], IMM),
        ("FRA", MessageType.URGENT_REQUEST, IMM, [HeaderFlag.MASS_CASUALTY], F),
        ("FRA", MessageType.DIFFUSION, F, [], IMM),
        ("FRA", MessageType.DB_CHECK_QUERY, F, [], P),
        ("FRA", MessageType.DB_CHECK_QUERY, R, [HeaderFlag.THREAT_TO_LIFE], R),  # not flaggable
        ("FRA", MessageType.NOTICE_REQUEST, F, [], P),
        ("FRA", MessageType.ACKNOWLEDGEMENT, F, [], F),  # an ack rides with what it acks
        ("team:irt-2026-001", MessageType.MESSAGE, F, [], IMM),
        ("hub:lyon", MessageType.MESSAGE, F, [], F),
    ],
)
def test_rule_table(
    sender: str,
    message_type: MessageType,
    declared: Precedence,
    flags: list[HeaderFlag],
    expected: Precedence,
) -> None:
    header = make_header(sender=sender, message_type=message_type, precedence=declared, flags=flags)
    assert assess_priority(header).precedence is expected


def test_a_capped_message_says_so_and_names_its_rule() -> None:
    assessment = assess_priority(make_header(precedence=F))
    assert assessment.capped
    assert assessment.declared is F
    assert assessment.rule == "R1"


def test_flags_can_raise_an_understated_message() -> None:
    assessment = assess_priority(make_header(precedence=R, flags=[HeaderFlag.THREAT_TO_LIFE]))
    assert assessment.precedence is F
    assert not assessment.capped


@given(
    message_type=st.sampled_from(list(MessageType)),
    declared=st.sampled_from(list(Precedence)),
    sender=st.sampled_from(["FRA", "team:imest-paris", "hub:singapore"]),
)
def test_without_flags_never_above_the_ceiling_nor_above_the_declaration(
    message_type: MessageType, declared: Precedence, sender: str
) -> None:
    from schemas.participants import kind_of

    header = make_header(sender=sender, message_type=message_type, precedence=declared)
    result = assess_priority(header).precedence
    _, ceiling = CEILINGS[(message_type, kind_of(sender))]
    assert result.rank >= ceiling.rank
    assert result.rank >= declared.rank


def test_the_operators_doc_lists_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "priority-rules.md").read_text()
    rule_ids = {rule for rule, _ in CEILINGS.values()} | {r for r, _, _ in FLAG_RULES.values()}
    for rule in rule_ids:
        assert f"| {rule} |" in doc, rule
