"""Notice review: the General Secretariat's check of a request before a notice circulates.

Theory of operation
-------------------
``review_notice(request, *, notices_in_force, now)`` is a pure function. Every rule in
``RULES`` is evaluated (none short-circuits, so the requester learns every problem at
once); each rule that fires gives one ``ReviewReason``. Then:

* any **refuse** rule fired: ``refused``, with the refusal reasons;
* else any **return** rule fired: ``returned`` for more information;
* else: ``published``.

The tables are the policy and docs/notice-review.md is their operators' copy (a test
checks the two agree row for row): ``SUBJECT_FIELDS`` (which subject kinds a colour takes
and the fields it needs), ``CATEGORY_CHARACTER`` (each declared offence's character),
``ARTICLE_3_TERMS`` (phrases in the facts that describe a conduct of a political,
military, religious or racial character) and ``ORDINARY_LAW_PREDOMINATES``.

The Article 3 screen (INTERPOL's Constitution forbids "any intervention or activities of
a political, military, religious or racial character") is a predominance test, cut down
to what a machine can read: a declared category of that character is refused (N3); a
request whose facts describe such a conduct is refused (N4) *unless* the declared offence
is a serious ordinary-law crime against persons or property that predominates whatever
its context (murder, hostage-taking, terrorism...): a murder committed during an election
campaign still passes. Human reviewers do the rest; this screen only catches the plain cases.

Worked example (at 2026-11-23): FRA requests a Red Notice for murder, prosecution,
maximum penalty 30 years, warrant and identity complete, no notice in force for him:
``published``. The same with ``maximum_penalty_years=1``: ``refused``
(``penalty-below-threshold``). With no ``judicial_basis``: ``returned``
(``missing-fields``: judicial_basis). For ``adultery``: ``refused`` (``excluded-offence``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

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
    ReviewReason,
    Sentence,
    SubjectKind,
    subject_identity,
)
from streams.core.clocks import as_utc

__all__ = [
    "ARTICLE_3_TERMS",
    "CATEGORY_CHARACTER",
    "MIN_PROSECUTION_PENALTY_YEARS",
    "MIN_SENTENCE_REMAINING_MONTHS",
    "ORDINARY_LAW_PREDOMINATES",
    "RULES",
    "SUBJECT_FIELDS",
    "Character",
    "Effect",
    "ReviewRule",
    "missing_fields",
    "review_notice",
]

MIN_PROSECUTION_PENALTY_YEARS: Final = 2
MIN_SENTENCE_REMAINING_MONTHS: Final = 6

_C, _K = NoticeColour, SubjectKind

# (colour, subject kind) -> the fields that must be present; a kind absent here is refused.
# "request." fields are on the request, the others on the subject.
SUBJECT_FIELDS: MappingProxyType[tuple[NoticeColour, SubjectKind], tuple[str, ...]] = (
    MappingProxyType(
        {
            (_C.RED, _K.PERSON): (
                "family_name", "forenames", "sex", "date_of_birth", "nationalities",
                "request.offence_category", "request.judicial_basis",
            ),
            (_C.YELLOW, _K.PERSON): ("family_name", "forenames", "date_of_birth", "photo_ref",
                                     "place"),
            (_C.BLUE, _K.PERSON): ("family_name", "request.offence_category"),
            (_C.BLACK, _K.PERSON): ("description", "place"),
            (_C.GREEN, _K.PERSON): ("family_name", "forenames", "date_of_birth",
                                    "request.offence_category"),
            (_C.ORANGE, _K.PERSON): ("family_name", "description"),
            (_C.ORANGE, _K.OBJECT): ("category", "description"),
            (_C.PURPLE, _K.OBJECT): ("category", "description", "request.offence_category"),
            (_C.UNSC_SPECIAL, _K.PERSON): ("family_name", "forenames", "request.un_reference"),
            (_C.UNSC_SPECIAL, _K.ENTITY): ("name", "request.un_reference"),
        }
    )
)  # fmt: skip


class Character(StrEnum):
    """The character of a declared offence, for Article 3 and the Red Notice minimums."""

    ORDINARY = "ordinary law"
    POLITICAL = "political"
    MILITARY = "military"
    RELIGIOUS = "religious"
    RACIAL = "racial"
    MORALS = "morals and cultural norms"  # ordinary law, but no Red Notice
    FAMILY = "family or private matter"
    ADMINISTRATIVE = "administrative violation"
    PRIVATE_DISPUTE = "private dispute"


ARTICLE_3 = frozenset({Character.POLITICAL, Character.MILITARY, Character.RELIGIOUS,
                       Character.RACIAL})  # fmt: skip
RED_EXCLUDED = frozenset({Character.MORALS, Character.FAMILY, Character.ADMINISTRATIVE,
                          Character.PRIVATE_DISPUTE})  # fmt: skip

_O = OffenceCategory
CATEGORY_CHARACTER: MappingProxyType[OffenceCategory, Character] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                _O.MURDER, _O.ASSAULT, _O.RAPE, _O.CHILD_SEXUAL_ABUSE, _O.KIDNAPPING,
                _O.HOSTAGE_TAKING, _O.ARMED_ROBBERY, _O.THEFT, _O.FRAUD, _O.MONEY_LAUNDERING,
                _O.CORRUPTION, _O.DRUG_TRAFFICKING, _O.HUMAN_TRAFFICKING, _O.MIGRANT_SMUGGLING,
                _O.ARMS_TRAFFICKING, _O.TERRORISM, _O.CYBERCRIME, _O.COUNTERFEITING,
                _O.ENVIRONMENTAL_CRIME, _O.CULTURAL_PROPERTY_TRAFFICKING, _O.INTERNATIONAL_CRIME,
            ),
            Character.ORDINARY,
        ),
        _O.TREASON: Character.POLITICAL,
        _O.SEDITION: Character.POLITICAL,
        _O.ESPIONAGE: Character.POLITICAL,
        _O.INSULTING_THE_HEAD_OF_STATE: Character.POLITICAL,
        _O.UNAUTHORISED_DEMONSTRATION: Character.POLITICAL,
        _O.MEMBERSHIP_OF_A_BANNED_PARTY: Character.POLITICAL,
        _O.DESERTION: Character.MILITARY,
        _O.INSUBORDINATION: Character.MILITARY,
        _O.DRAFT_EVASION: Character.MILITARY,
        _O.APOSTASY: Character.RELIGIOUS,
        _O.BLASPHEMY: Character.RELIGIOUS,
        _O.PROSELYTISM: Character.RELIGIOUS,
        _O.RACE_LAW_VIOLATION: Character.RACIAL,
        _O.ADULTERY: Character.MORALS,
        _O.DEFAMATION: Character.MORALS,
        _O.FAMILY_MAINTENANCE: Character.FAMILY,
        _O.PARENTAL_CHILD_ABDUCTION: Character.FAMILY,
        _O.IMMIGRATION_VIOLATION: Character.ADMINISTRATIVE,
        _O.TRAFFIC_VIOLATION: Character.ADMINISTRATIVE,
        _O.CUSTOMS_VIOLATION: Character.ADMINISTRATIVE,
        _O.UNPAID_DEBT: Character.PRIVATE_DISPUTE,
        _O.DISHONOURED_CHEQUE: Character.PRIVATE_DISPUTE,
        _O.BREACH_OF_CONTRACT: Character.PRIVATE_DISPUTE,
    }
)  # fmt: skip

if set(CATEGORY_CHARACTER) != set(OffenceCategory):  # our bug: fail at import, not in review
    raise AssertionError("CATEGORY_CHARACTER must give every OffenceCategory a character")

# Serious ordinary-law crimes whose ordinary-law element predominates whatever their
# political, military, religious or racial context (the "relative offence" reasoning).
ORDINARY_LAW_PREDOMINATES: frozenset[OffenceCategory] = frozenset({
    _O.MURDER, _O.RAPE, _O.CHILD_SEXUAL_ABUSE, _O.KIDNAPPING, _O.HOSTAGE_TAKING,
    _O.ARMED_ROBBERY, _O.HUMAN_TRAFFICKING, _O.TERRORISM, _O.INTERNATIONAL_CRIME,
})  # fmt: skip

# Phrases in the facts that describe a conduct of Article 3 character, whole words,
# case-insensitive. Context words alone ("election", "protest", "army") are not here: an
# ordinary crime committed in such a context is judged on its declared category.
ARTICLE_3_TERMS: MappingProxyType[str, Character] = MappingProxyType(
    {
        "criticised the government": Character.POLITICAL,
        "criticized the government": Character.POLITICAL,
        "opposition party": Character.POLITICAL,
        "political opponent": Character.POLITICAL,
        "insulted the president": Character.POLITICAL,
        "organised a protest": Character.POLITICAL,
        "organized a protest": Character.POLITICAL,
        "deserted": Character.MILITARY,
        "desertion": Character.MILITARY,
        "refused military service": Character.MILITARY,
        "apostasy": Character.RELIGIOUS,
        "blasphemy": Character.RELIGIOUS,
        "converted to": Character.RELIGIOUS,
        "because of his ethnicity": Character.RACIAL,
        "because of her ethnicity": Character.RACIAL,
        "because of their race": Character.RACIAL,
    }
)
_TERMS = re.compile(
    r"\b(" + "|".join(re.escape(t) for t in sorted(ARTICLE_3_TERMS, key=len, reverse=True))
    + r")\b",
    re.IGNORECASE,
)  # fmt: skip


class Effect(StrEnum):
    REFUSE = "refuse"
    RETURN = "return"


Check = Callable[[NoticeRequest, tuple[Notice, ...]], str | None]


@dataclass(frozen=True, slots=True)
class ReviewRule:
    """One row of the review table: when it fires, it says why in ``check``'s returned text."""

    id: str
    code: ReasonCode
    title: str
    colours: frozenset[NoticeColour]
    effect: Effect
    check: Check


Subject = PersonSubject | ObjectSubject | EntitySubject


def missing_fields(request: NoticeRequest) -> tuple[str, ...]:
    """The fields ``SUBJECT_FIELDS`` requires for this colour and subject kind that are empty."""
    required = SUBJECT_FIELDS.get((request.colour, request.subject.kind), ())
    missing = []
    for name in required:
        owner: NoticeRequest | Subject = request.subject
        if name.startswith("request."):
            owner, name = request, name.removeprefix("request.")
        value = getattr(owner, name)
        if value is None or value == () or value == "":
            missing.append(name)
    return tuple(missing)


def _wrong_kind(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    if (request.colour, request.subject.kind) in SUBJECT_FIELDS:
        return None
    kinds = [k.value for (c, k) in SUBJECT_FIELDS if c is request.colour]
    return f"a {request.colour.value} notice concerns a {' or '.join(kinds)}, not a " + (
        f"{request.subject.kind.value}"
    )


def _missing(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    missing = missing_fields(request)
    return f"please supply: {', '.join(missing)}" if missing else None


def _character(request: NoticeRequest) -> Character | None:
    category = request.offence_category
    return None if category is None else CATEGORY_CHARACTER[category]


def _article_3_category(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    character = _character(request)
    if character in ARTICLE_3:
        assert request.offence_category is not None
        return (
            f"{request.offence_category.value} is an offence of a {character} character "
            "(Constitution, Article 3)"
        )
    return None


def _article_3_facts(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    if request.offence_category in ORDINARY_LAW_PREDOMINATES:
        return None
    found = _TERMS.search(request.facts)
    if found is None:
        return None
    character = ARTICLE_3_TERMS[found.group(1).lower()]
    return (
        f"the facts describe a conduct of a {character} character ({found.group(1)!r}) "
        "and the declared offence does not predominate over it (Article 3)"
    )


def _excluded(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    character = _character(request)
    if character in RED_EXCLUDED:
        assert request.offence_category is not None
        return f"{request.offence_category.value} is a {character}: no Red Notice for it"
    return None


def _penalty(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    basis = request.judicial_basis
    if not isinstance(basis, Prosecution) or basis.maximum_penalty_years is None:
        return None  # None is life imprisonment: above any threshold
    if basis.maximum_penalty_years >= MIN_PROSECUTION_PENALTY_YEARS:
        return None
    return (
        f"maximum penalty {basis.maximum_penalty_years} years; a Red Notice for prosecution "
        f"needs at least {MIN_PROSECUTION_PENALTY_YEARS}"
    )


def _sentence(request: NoticeRequest, _: tuple[Notice, ...]) -> str | None:
    basis = request.judicial_basis
    if not isinstance(basis, Sentence) or basis.remaining_months >= MIN_SENTENCE_REMAINING_MONTHS:
        return None
    return (
        f"{basis.remaining_months} months left to serve; a Red Notice to serve a sentence "
        f"needs at least {MIN_SENTENCE_REMAINING_MONTHS}"
    )


def _duplicate(request: NoticeRequest, in_force: tuple[Notice, ...]) -> str | None:
    identity = subject_identity(request.subject)
    for notice in in_force:
        if notice.colour is request.colour and subject_identity(notice.subject) == identity:
            return f"notice {notice.notice_id} ({notice.state.value}) already covers this subject"
    return None


_ALL = frozenset(NoticeColour)
_RED = frozenset({NoticeColour.RED})

# Evaluated in this order; the reasons come out in this order.
RULES: tuple[ReviewRule, ...] = (
    ReviewRule("N1", ReasonCode.WRONG_SUBJECT_KIND, "subject kind not taken by the colour",
               _ALL, Effect.REFUSE, _wrong_kind),
    ReviewRule("N2", ReasonCode.MISSING_FIELDS, "required fields missing", _ALL, Effect.RETURN,
               _missing),
    ReviewRule("N3", ReasonCode.ARTICLE_3_CATEGORY, "offence of Article 3 character", _ALL,
               Effect.REFUSE, _article_3_category),
    ReviewRule("N4", ReasonCode.ARTICLE_3_FACTS, "facts of Article 3 character predominate",
               _ALL, Effect.REFUSE, _article_3_facts),
    ReviewRule("N5", ReasonCode.EXCLUDED_OFFENCE, "offence excluded from Red Notices", _RED,
               Effect.REFUSE, _excluded),
    ReviewRule("N6", ReasonCode.PENALTY_BELOW_THRESHOLD, "prosecution: penalty under 2 years",
               _RED, Effect.REFUSE, _penalty),
    ReviewRule("N7", ReasonCode.SENTENCE_BELOW_THRESHOLD, "sentence: under 6 months to serve",
               _RED, Effect.REFUSE, _sentence),
    ReviewRule("N8", ReasonCode.DUPLICATE, "duplicate of a notice in force", _ALL,
               Effect.REFUSE, _duplicate),
)  # fmt: skip


def _in_force(notices: Iterable[Notice], now: datetime) -> tuple[Notice, ...]:
    """Published or suspended notices not past their expiry at ``now``."""
    live = (NoticeState.PUBLISHED, NoticeState.SUSPENDED)
    return tuple(
        n
        for n in notices
        if n.state in live and (n.expires_at is None or as_utc(n.expires_at) > now)
    )


def review_notice(
    request: NoticeRequest, *, notices_in_force: Iterable[Notice], now: datetime
) -> ReviewOutcome:
    """Publish, refuse or return ``request`` (see the module docstring and its example)."""
    in_force = _in_force(notices_in_force, as_utc(now))
    fired: list[tuple[ReviewRule, str]] = []
    for rule in RULES:
        if request.colour in rule.colours:
            text = rule.check(request, in_force)
            if text is not None:
                fired.append((rule, text))
    refusals = [(r, t) for r, t in fired if r.effect is Effect.REFUSE]
    chosen = refusals or fired
    if not chosen:
        return ReviewOutcome(request_id=request.request_id, decision=ReviewDecision.PUBLISHED)
    decision = ReviewDecision.REFUSED if refusals else ReviewDecision.RETURNED
    reasons = tuple(ReviewReason(code=r.code, text=f"{r.id}: {t}"[:256]) for r, t in chosen)
    return ReviewOutcome(request_id=request.request_id, decision=decision, reasons=reasons)
