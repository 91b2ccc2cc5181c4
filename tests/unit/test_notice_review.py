"""review_notice: every rule reachable, a sound Red Notice published, the document agrees."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.notices import (
    EntitySubject,
    Notice,
    NoticeColour,
    NoticeRequest,
    NoticeState,
    ObjectSubject,
    OffenceCategory,
    PersonSubject,
    Prosecution,
    ReasonCode,
    ReviewDecision,
    ReviewOutcome,
    Sentence,
)
from schemas.registry import Region
from streams.core.notice_review import (
    ARTICLE_3_TERMS,
    CATEGORY_CHARACTER,
    ORDINARY_LAW_PREDOMINATES,
    RULES,
    SUBJECT_FIELDS,
    ReviewRule,
    missing_fields,
    review_notice,
)

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
REQUEST_ID = "6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de"
DOC = Path(__file__).resolve().parents[2] / "docs" / "notice-review.md"
C, OC = NoticeColour, OffenceCategory
PERSON = PersonSubject(
    family_name="DOE",
    forenames="John",
    sex="M",
    date_of_birth="1980-02-29",
    nationalities=("FRA",),
    description="1.80 m",
    place="Lyon",
    photo_ref="photo-1",
)
WARRANT = Prosecution(
    warrant_reference="TJ-PARIS-2026-114",
    issuing_authority="Paris investigating judge",
    maximum_penalty_years=30,
)


def request(**changes: Any) -> NoticeRequest:
    fields: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "requesting_ncb": "FRA",
        "colour": C.RED,
        "subject": PERSON,
        "facts": "Shot the victim during a robbery in Lyon on 3 March 2026.",
        "offence_category": OC.MURDER,
        "judicial_basis": WARRANT,
    }
    return NoticeRequest(**(fields | changes))


def notice(state: NoticeState = NoticeState.PUBLISHED, **changes: Any) -> Notice:
    fields: dict[str, Any] = {
        "notice_id": "red-2025-000001",
        "request_id": REQUEST_ID,
        "colour": C.RED,
        "state": state,
        "requester": "FRA",
        "subject": PERSON,
        "facts": "f",
        "published_at": NOW - timedelta(days=300),
        "expires_at": NOW + timedelta(days=1000),
    }
    return Notice(**(fields | changes))


def review(req: NoticeRequest, in_force: tuple[Notice, ...] = ()) -> ReviewOutcome:
    return review_notice(req, notices_in_force=in_force, now=NOW)


def codes(outcome: ReviewOutcome) -> list[ReasonCode]:
    return [reason.code for reason in outcome.reasons]


def test_a_complete_red_notice_for_murder_is_published() -> None:
    outcome = review(request())
    assert outcome.decision is ReviewDecision.PUBLISHED
    assert outcome.reasons == ()
    assert outcome.request_id == REQUEST_ID


P = PersonSubject
R, F = ReviewDecision.REFUSED, ReviewDecision.RETURNED
RC = ReasonCode
SOUND_OBJECT = ObjectSubject(category="parcel bomb", description="a pressure-cooker device")

# changes to the sound request -> decision, reason codes (in rule order)
CASES: list[tuple[str, dict[str, Any], ReviewDecision, list[ReasonCode]]] = [
    ("red notice on an object", {"subject": SOUND_OBJECT}, R, [RC.WRONG_SUBJECT_KIND]),
    (
        "purple notice on a person",
        {"colour": C.PURPLE, "offence_category": OC.FRAUD},
        R,
        [RC.WRONG_SUBJECT_KIND],
    ),
    ("red without judicial basis", {"judicial_basis": None}, F, [RC.MISSING_FIELDS]),
    (
        "red without identity",
        {"subject": P(description="tall"), "offence_category": None},
        F,
        [RC.MISSING_FIELDS],
    ),
    ("political category", {"offence_category": OC.SEDITION}, R, [RC.ARTICLE_3_CATEGORY]),
    ("military category", {"offence_category": OC.DESERTION}, R, [RC.ARTICLE_3_CATEGORY]),
    ("religious category", {"offence_category": OC.BLASPHEMY}, R, [RC.ARTICLE_3_CATEGORY]),
    ("racial category", {"offence_category": OC.RACE_LAW_VIOLATION}, R, [RC.ARTICLE_3_CATEGORY]),
    (
        "fraud whose facts are criticism of the government",
        {"offence_category": OC.FRAUD, "facts": "He publicly Criticised the Government."},
        R,
        [RC.ARTICLE_3_FACTS],
    ),
    (
        "theft by a soldier who deserted",
        {"offence_category": OC.THEFT, "facts": "He deserted his unit with a rifle."},
        R,
        [RC.ARTICLE_3_FACTS],
    ),
    ("adultery", {"offence_category": OC.ADULTERY}, R, [RC.EXCLUDED_OFFENCE]),
    ("family maintenance", {"offence_category": OC.FAMILY_MAINTENANCE}, R, [RC.EXCLUDED_OFFENCE]),
    ("traffic violation", {"offence_category": OC.TRAFFIC_VIOLATION}, R, [RC.EXCLUDED_OFFENCE]),
    ("dishonoured cheque", {"offence_category": OC.DISHONOURED_CHEQUE}, R, [RC.EXCLUDED_OFFENCE]),
    (
        "prosecution, one year maximum",
        {"judicial_basis": WARRANT.model_copy(update={"maximum_penalty_years": 1})},
        R,
        [RC.PENALTY_BELOW_THRESHOLD],
    ),
    (
        "sentence, five months left",
        {
            "judicial_basis": Sentence(
                judgement_reference="J", issuing_authority="court", remaining_months=5
            )
        },
        R,
        [RC.SENTENCE_BELOW_THRESHOLD],
    ),
    (
        "several refusals at once, and the missing field not reported",
        {
            "offence_category": OC.UNPAID_DEBT,
            "judicial_basis": WARRANT.model_copy(update={"maximum_penalty_years": 0}),
            "subject": PERSON.model_copy(update={"sex": None}),
        },
        R,
        [RC.EXCLUDED_OFFENCE, RC.PENALTY_BELOW_THRESHOLD],
    ),
]


@pytest.mark.parametrize(("changes", "decision", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_rule_decides_as_documented(
    changes: dict[str, Any], decision: ReviewDecision, expected: list[ReasonCode]
) -> None:
    outcome = review(request(**changes))
    assert outcome.decision is decision
    assert codes(outcome) == expected
    assert all(reason.text for reason in outcome.reasons)


def test_a_duplicate_of_a_notice_in_force_is_refused_naming_it() -> None:
    outcome = review(request(), (notice(),))
    assert codes(outcome) == [RC.DUPLICATE]
    assert "red-2025-000001" in outcome.reasons[0].text


@pytest.mark.parametrize(
    "other",
    [
        notice(colour=C.BLUE),  # another colour for the same person
        notice(subject=PERSON.model_copy(update={"date_of_birth": "1981-01-01"})),
        notice(state=NoticeState.CANCELLED),
        notice(state=NoticeState.EXPIRED),
        notice(expires_at=NOW),  # validity over at this instant
    ],
    ids=["other colour", "other person", "cancelled", "expired", "past its end"],
)
def test_only_a_live_notice_of_the_same_colour_and_subject_is_a_duplicate(other: Notice) -> None:
    assert review(request(), (other,)).decision is ReviewDecision.PUBLISHED


def test_a_suspended_notice_still_blocks_a_new_request_and_identity_ignores_case() -> None:
    shouted = PERSON.model_copy(update={"family_name": "doe", "forenames": " JOHN "})
    assert codes(review(request(subject=shouted), (notice(NoticeState.SUSPENDED),))) == [
        RC.DUPLICATE
    ]


@pytest.mark.parametrize(
    ("years", "months", "decision"),
    [(2, None, ReviewDecision.PUBLISHED), (None, None, ReviewDecision.PUBLISHED),
     (None, 6, ReviewDecision.PUBLISHED), (None, 0, ReviewDecision.REFUSED)],
    ids=["two years is enough", "life imprisonment", "six months is enough", "nothing left"],
)  # fmt: skip
def test_the_red_notice_thresholds_are_inclusive(
    years: int | None, months: int | None, decision: ReviewDecision
) -> None:
    basis: Prosecution | Sentence
    if months is None:
        basis = WARRANT.model_copy(update={"maximum_penalty_years": years})
    else:
        basis = Sentence(judgement_reference="J", issuing_authority="c", remaining_months=months)
    assert review(request(judicial_basis=basis)).decision is decision


@pytest.mark.parametrize(
    ("category", "facts"),
    [
        (OC.MURDER, "He shot the mayor during the election campaign; an opposition party rally."),
        (OC.HOSTAGE_TAKING, "A group that organised a protest then held twelve people hostage."),
        (OC.TERRORISM, "Bombed a bus; the group says it acts against apostasy."),
        (OC.FRAUD, "Embezzled campaign funds during the election."),  # context words only
    ],
)
def test_an_ordinary_law_crime_in_a_political_context_can_pass(
    category: OffenceCategory, facts: str
) -> None:
    assert review(request(offence_category=category, facts=facts)).decision is (
        ReviewDecision.PUBLISHED
    )


def test_article_3_applies_to_every_colour_and_exclusions_only_to_red() -> None:
    blue = request(colour=C.BLUE, judicial_basis=None)
    assert review(blue.model_copy(update={"offence_category": OC.APOSTASY})).decision is R
    assert review(blue.model_copy(update={"offence_category": OC.ADULTERY})).decision is (
        ReviewDecision.PUBLISHED
    )


SOUND_OTHER_COLOURS: list[tuple[NoticeColour, Any, dict[str, Any]]] = [
    (C.YELLOW, PERSON, {"offence_category": None, "judicial_basis": None}),
    (C.BLUE, P(family_name="DOE"), {"judicial_basis": None}),
    (C.BLACK, P(description="male, about 40", place="Rhône river, Lyon"), {}),
    (C.GREEN, PERSON, {"offence_category": OC.CHILD_SEXUAL_ABUSE}),
    (C.ORANGE, SOUND_OBJECT, {"offence_category": None}),
    (C.ORANGE, P(family_name="DOE", description="armed"), {}),
    (C.PURPLE, SOUND_OBJECT, {"offence_category": OC.TERRORISM}),
    (C.UNSC_SPECIAL, PERSON, {"un_reference": "QDi.001"}),
    (C.UNSC_SPECIAL, EntitySubject(name="Example Front"), {"un_reference": "QDe.001"}),
]


@pytest.mark.parametrize(
    ("colour", "subject", "changes"),
    SOUND_OTHER_COLOURS,
    ids=[f"{c.value}-{s.kind.value}" for c, s, _ in SOUND_OTHER_COLOURS],
)
def test_every_colour_and_subject_kind_has_a_publishable_request(
    colour: NoticeColour, subject: Any, changes: dict[str, Any]
) -> None:
    req = request(colour=colour, subject=subject, **changes)
    assert review(req).decision is ReviewDecision.PUBLISHED
    assert missing_fields(req) == ()


def test_a_special_notice_without_its_un_reference_is_returned_for_it() -> None:
    outcome = review(request(colour=C.UNSC_SPECIAL))
    assert outcome.decision is F
    assert outcome.reasons[0].text == "N2: please supply: un_reference"


def test_every_reason_code_is_reachable_by_some_rule() -> None:
    # not-requester is the CCC desk's check of the sender (streams/desks/notice_desk.py)
    assert {rule.code for rule in RULES} == set(ReasonCode) - {ReasonCode.NOT_REQUESTER}


def test_a_refusal_without_reasons_cannot_be_built() -> None:
    with pytest.raises(ValidationError, match="must say why"):
        ReviewOutcome(request_id=REQUEST_ID, decision=ReviewDecision.REFUSED)


def test_requests_round_trip_as_json() -> None:
    req = request(region=Region.EUROPE)
    assert NoticeRequest.model_validate_json(req.model_dump_json()) == req


def test_the_phrase_list_and_the_predominant_crimes_are_consistent() -> None:
    assert all(term == term.lower() for term in ARTICLE_3_TERMS)
    assert all(CATEGORY_CHARACTER[c].value == "ordinary law" for c in ORDINARY_LAW_PREDOMINATES)


# --- the operators' document says what the code does ---


def doc_rows(pattern: str) -> list[str]:
    return [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if re.match(pattern, ln)]


def rule_row(rule: ReviewRule) -> str:
    colours = (
        "any"
        if rule.colours == frozenset(NoticeColour)
        else ", ".join(c.value for c in NoticeColour if c in rule.colours)
    )
    return f"| {rule.id} | `{rule.code.value}` | {rule.title} | {colours} | {rule.effect.value} |"


def test_the_documented_rule_table_is_the_code_table_row_for_row() -> None:
    assert doc_rows(r"^\| N\d+ \|") == [rule_row(rule) for rule in RULES]


def test_the_documented_required_fields_are_the_code_table() -> None:
    colours = "|".join(re.escape(c.value) for c in NoticeColour)
    expected = [
        f"| {colour.value} | {kind.value} | {', '.join(fields)} |"
        for (colour, kind), fields in SUBJECT_FIELDS.items()
    ]
    assert doc_rows(rf"^\| ({colours}) \| (person|object|entity) \|") == expected


def test_the_documented_categories_are_the_code_table() -> None:
    names = "|".join(re.escape(c.value) for c in OffenceCategory)
    expected = [f"| {c.value} | {CATEGORY_CHARACTER[c].value} |" for c in OffenceCategory]
    assert doc_rows(rf"^\| ({names}) \| [a-z ]+ \|$") == expected


def test_the_document_lists_every_phrase_and_predominant_crime() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert all(f"`{term}`" in text for term in ARTICLE_3_TERMS)
    assert all(f"`{c.value}`" in text for c in ORDINARY_LAW_PREDOMINATES)
