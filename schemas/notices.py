"""Notices and diffusions as contracts: what an NCB asks for, what the CCC decides and sends.

Theory of operation
-------------------
An NCB sends a ``NoticeRequest`` (colour, subject, facts and, for a Red Notice, the
judicial basis). The General Secretariat reviews it (``streams.core.notice_review``) and answers
with a ``ReviewOutcome``: published, refused with reasons, or returned for more
information. A published ``Notice`` is broadcast worldwide or to one INTERPOL region; every
change (suspension, reinstatement, renewal, cancellation, expiry) is broadcast again with
a higher ``version``, so recipients keep the latest (``schemas.notice_view``).

A ``Diffusion`` is lighter: an NCB sends it directly to some NCBs and/or a whole region,
without prior review; the CCC records it and can recall it (``DiffusionRecall``) when a
compliance check finds it should not have circulated.

Models here are strict, frozen and refuse unknown fields, like ``schemas.bodies``. They do
not judge: a Red Notice request missing its arrest-warrant reference still parses, so that
the review can return it for more information instead of dead-lettering it.

Worked example: FRA asks for a Red Notice on a person charged with murder (maximum
penalty 30 years, warrant ``TJ-PARIS-2026-114``, issued by the Paris investigating judge)::

    NoticeRequest(request_id=..., requesting_ncb="FRA", colour=NoticeColour.RED,
                  subject=PersonSubject(family_name="DOE", forenames="John", ...),
                  offence_category=OffenceCategory.MURDER, facts="...",
                  judicial_basis=Prosecution(warrant_reference="TJ-PARIS-2026-114",
                                             issuing_authority="Paris investigating judge",
                                             maximum_penalty_years=30))
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.header import MessageId, UtcTimestamp
from schemas.registry import Region

__all__ = [
    "MIN_NOTICE_VERSION",
    "Diffusion",
    "DiffusionRecall",
    "EntitySubject",
    "JudicialBasis",
    "Notice",
    "NoticeAction",
    "NoticeColour",
    "NoticeId",
    "NoticeRequest",
    "NoticeState",
    "NoticeSubject",
    "ObjectSubject",
    "OffenceCategory",
    "PersonSubject",
    "Prosecution",
    "ReasonCode",
    "RecallReason",
    "RenewalPrompt",
    "ReviewDecision",
    "ReviewOutcome",
    "ReviewReason",
    "Sentence",
    "SubjectKind",
    "subject_identity",
]

MIN_NOTICE_VERSION = 1

Text = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
Line = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Iso3 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
NoticeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class NoticeColour(StrEnum):
    """INTERPOL's notice colours, and the special notice it issues with the UN Security Council."""

    RED = "red"  # provisional arrest of a wanted person, with a view to extradition
    YELLOW = "yellow"  # locate a missing person, or identify one unable to say who they are
    BLUE = "blue"  # more information on a person's identity, location or activities
    BLACK = "black"  # identify an unidentified body
    GREEN = "green"  # warn about a person's criminal activities (a threat to public safety)
    ORANGE = "orange"  # warn of a serious and imminent threat: a person, object or event
    PURPLE = "purple"  # modus operandi, objects, devices and concealment methods
    UNSC_SPECIAL = "interpol-unsc-special"  # persons and entities under UN sanctions


class NoticeState(StrEnum):
    """Where a notice is in its life (``streams.core.notice_lifecycle`` has the transitions)."""

    REQUESTED = "requested"
    UNDER_REVIEW = "under_review"
    PUBLISHED = "published"
    REFUSED = "refused"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class SubjectKind(StrEnum):
    PERSON = "person"
    OBJECT = "object"  # a device, weapon, document, or a modus operandi (Purple)
    ENTITY = "entity"  # an organisation under UN sanctions


class OffenceCategory(StrEnum):
    """The offence an NCB declares; the review's Article 3 and Red Notice screens read it."""

    # serious ordinary-law crimes
    MURDER = "murder"
    ASSAULT = "assault"
    RAPE = "rape"
    CHILD_SEXUAL_ABUSE = "child-sexual-abuse"
    KIDNAPPING = "kidnapping"
    HOSTAGE_TAKING = "hostage-taking"
    ARMED_ROBBERY = "armed-robbery"
    THEFT = "theft"
    FRAUD = "fraud"
    MONEY_LAUNDERING = "money-laundering"
    CORRUPTION = "corruption"
    DRUG_TRAFFICKING = "drug-trafficking"
    HUMAN_TRAFFICKING = "human-trafficking"
    MIGRANT_SMUGGLING = "migrant-smuggling"
    ARMS_TRAFFICKING = "arms-trafficking"
    TERRORISM = "terrorism"
    CYBERCRIME = "cybercrime"
    COUNTERFEITING = "counterfeiting"
    ENVIRONMENTAL_CRIME = "environmental-crime"
    CULTURAL_PROPERTY_TRAFFICKING = "cultural-property-trafficking"
    INTERNATIONAL_CRIME = "genocide-war-crimes-crimes-against-humanity"
    # political, military, religious or racial in character (Article 3)
    TREASON = "treason"
    SEDITION = "sedition"
    ESPIONAGE = "espionage"
    INSULTING_THE_HEAD_OF_STATE = "insulting-the-head-of-state"
    UNAUTHORISED_DEMONSTRATION = "unauthorised-demonstration"
    MEMBERSHIP_OF_A_BANNED_PARTY = "membership-of-a-banned-party"
    DESERTION = "desertion"
    INSUBORDINATION = "insubordination"
    DRAFT_EVASION = "draft-evasion"
    APOSTASY = "apostasy"
    BLASPHEMY = "blasphemy"
    PROSELYTISM = "proselytism"
    RACE_LAW_VIOLATION = "race-law-violation"
    # ordinary law, but never a Red Notice (morals, family, administrative, private)
    ADULTERY = "adultery"
    DEFAMATION = "defamation"
    FAMILY_MAINTENANCE = "non-payment-of-family-maintenance"
    PARENTAL_CHILD_ABDUCTION = "parental-child-abduction"
    IMMIGRATION_VIOLATION = "immigration-violation"
    TRAFFIC_VIOLATION = "traffic-violation"
    CUSTOMS_VIOLATION = "customs-violation"
    UNPAID_DEBT = "unpaid-debt"
    DISHONOURED_CHEQUE = "dishonoured-cheque"
    BREACH_OF_CONTRACT = "breach-of-contract"


class PersonSubject(_Model):
    """A person; which fields a colour needs is the review's table, not this model's."""

    kind: Literal[SubjectKind.PERSON] = SubjectKind.PERSON
    family_name: Line | None = None
    forenames: Line | None = None
    sex: Literal["F", "M", "X"] | None = None
    date_of_birth: Day | None = None
    nationalities: Annotated[tuple[Iso3, ...], Field(max_length=8)] = ()
    description: Text | None = None  # physical description; for Black, the body
    place: Line | None = None  # last seen (Yellow), found (Black), believed to be (Red)
    photo_ref: Line | None = None
    fingerprints_ref: Line | None = None
    dna_ref: Line | None = None


class ObjectSubject(_Model):
    """A thing or a method: a parcel bomb design, a counterfeit document, a smuggling route."""

    kind: Literal[SubjectKind.OBJECT] = SubjectKind.OBJECT
    category: Line | None = None
    description: Text | None = None
    identifier: Line | None = None  # a serial number, a VIN, a document number


class EntitySubject(_Model):
    """An organisation (INTERPOL-UN Security Council Special Notices name entities too)."""

    kind: Literal[SubjectKind.ENTITY] = SubjectKind.ENTITY
    name: Line | None = None
    aliases: Annotated[tuple[Line, ...], Field(max_length=32)] = ()
    country: Iso3 | None = None


NoticeSubject = Annotated[
    PersonSubject | ObjectSubject | EntitySubject, Field(discriminator="kind")
]


def subject_identity(subject: PersonSubject | ObjectSubject | EntitySubject) -> tuple[str, ...]:
    """Who or what a subject is, for spotting a duplicate notice: case and spacing ignored."""

    def norm(text: str | None) -> str:
        return " ".join((text or "").casefold().split())

    if isinstance(subject, PersonSubject):
        return ("person", norm(subject.family_name), norm(subject.forenames),
                subject.date_of_birth or "")  # fmt: skip
    if isinstance(subject, ObjectSubject):
        return ("object", norm(subject.category), norm(subject.identifier or subject.description))
    return ("entity", norm(subject.name), subject.country or "")


class Prosecution(_Model):
    """Sought for prosecution: an arrest warrant, and the law's maximum penalty."""

    basis: Literal["prosecution"] = "prosecution"
    warrant_reference: Line
    issuing_authority: Line
    maximum_penalty_years: Annotated[int, Field(ge=0, le=200)] | None = None  # None: life


class Sentence(_Model):
    """Sought to serve a sentence: the judgement, and the time still to serve."""

    basis: Literal["sentence"] = "sentence"
    judgement_reference: Line
    issuing_authority: Line
    remaining_months: Annotated[int, Field(ge=0, le=2_400)]


JudicialBasis = Annotated[Prosecution | Sentence, Field(discriminator="basis")]


class NoticeRequest(_Model):
    """An NCB asks the General Secretariat to publish a notice; ``region`` None: worldwide."""

    request_id: MessageId
    requesting_ncb: Iso3
    colour: NoticeColour
    subject: NoticeSubject
    facts: Text
    offence_category: OffenceCategory | None = None
    judicial_basis: JudicialBasis | None = None
    un_reference: Line | None = None  # the UN sanctions list entry (Special Notices)
    region: Region | None = None


class NoticeAction(StrEnum):
    """What a requesting NCB may do to its own notice by message (``notice-action``)."""

    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    RENEW = "renew"
    CANCEL = "cancel"


class Notice(_Model):
    """A notice as the CCC holds and broadcasts it; every change raises ``version``."""

    notice_id: NoticeId
    request_id: MessageId
    colour: NoticeColour
    state: NoticeState
    requester: Iso3
    subject: NoticeSubject
    facts: Text
    offence_category: OffenceCategory | None = None
    region: Region | None = None  # None: worldwide
    version: Annotated[int, Field(ge=MIN_NOTICE_VERSION)] = MIN_NOTICE_VERSION
    published_at: UtcTimestamp | None = None
    expires_at: UtcTimestamp | None = None
    prompted_at: UtcTimestamp | None = None  # renewal prompt sent for this validity period

    @property
    def worldwide(self) -> bool:
        return self.region is None


class ReviewDecision(StrEnum):
    PUBLISHED = "published"
    REFUSED = "refused"
    RETURNED = "returned"  # for more information: nothing disqualifying, something missing


class ReasonCode(StrEnum):
    """Why a request was refused or returned; docs/notice-review.md explains each."""

    WRONG_SUBJECT_KIND = "wrong-subject-kind"
    MISSING_FIELDS = "missing-fields"
    ARTICLE_3_CATEGORY = "article-3-category"
    ARTICLE_3_FACTS = "article-3-facts"
    EXCLUDED_OFFENCE = "excluded-offence"
    PENALTY_BELOW_THRESHOLD = "penalty-below-threshold"
    SENTENCE_BELOW_THRESHOLD = "sentence-below-threshold"
    DUPLICATE = "duplicate"
    NOT_REQUESTER = "not-requester"  # the CCC desk's check: the sender is not the requester


class ReviewReason(_Model):
    code: ReasonCode
    text: Line


class ReviewOutcome(_Model):
    """The review's answer; a refusal or return always says why."""

    request_id: MessageId
    decision: ReviewDecision
    reasons: Annotated[tuple[ReviewReason, ...], Field(max_length=32)] = ()

    @model_validator(mode="after")
    def _reasons_match_decision(self) -> Self:
        if self.decision is ReviewDecision.PUBLISHED and self.reasons:
            raise ValueError("a published outcome carries no reasons")
        if self.decision is not ReviewDecision.PUBLISHED and not self.reasons:
            raise ValueError(f"a {self.decision.value} outcome must say why (reasons)")
        return self


class RenewalPrompt(_Model):
    """Six months (scaled) before expiry the requester is asked whether to renew."""

    notice_id: NoticeId
    requester: Iso3
    version: Annotated[int, Field(ge=MIN_NOTICE_VERSION)]
    expires_at: UtcTimestamp


class Diffusion(_Model):
    """An alert an NCB sends directly to some NCBs and/or one region, without review."""

    diffusion_id: MessageId
    sender: Iso3
    ncbs: Annotated[tuple[Iso3, ...], Field(max_length=196)] = ()
    region: Region | None = None
    subject: Line
    facts: Text
    sent_at: UtcTimestamp

    @model_validator(mode="after")
    def _addressed(self) -> Self:
        if not self.ncbs and self.region is None:
            raise ValueError("a diffusion needs recipients: some NCBs, a region, or both")
        return self


class RecallReason(StrEnum):
    COMPLIANCE_FINDING = "compliance-finding"  # the General Secretariat found it non-compliant
    SENDER_WITHDREW = "sender-withdrew"
    SUPERSEDED = "superseded"


class DiffusionRecall(_Model):
    diffusion_id: MessageId
    reason: RecallReason
    text: Line | None = None
