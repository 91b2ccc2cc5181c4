"""The routing header: what travels in clear so the CCC can route what it cannot read.

The header is bound into the sealed envelope as associated data and covered by the
sender's signature (see ``schemas.sealing`` and docs/wire-format.md), so it can be read
by anyone on the path but changed by no one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from schemas.markings import Evaluation, HandlingCode, Tlp
from schemas.participants import ParticipantId, RecipientId

__all__ = [
    "HEADER_SCHEMA_VERSION",
    "MAX_RECIPIENTS",
    "HeaderFlag",
    "Language",
    "MessageId",
    "MessageType",
    "Precedence",
    "RoutingHeader",
    "Suite",
    "TraceId",
    "UtcTimestamp",
    "format_timestamp",
]

HEADER_SCHEMA_VERSION = 1
MAX_RECIPIENTS = 256


class MessageType(StrEnum):
    """What a message is; the CCC routes and prioritises on it."""

    MESSAGE = "message"  # bilateral or multilateral NCB-to-NCB message
    DIFFUSION = "diffusion"  # an alert sent directly by an NCB to several NCBs
    URGENT_REQUEST = "urgent-request"  # a request for the CCC's immediate help
    DB_CHECK_QUERY = "db-check-query"
    DB_CHECK_RESULT = "db-check-result"
    NOTICE_REQUEST = "notice-request"  # an NCB asks for a notice
    NOTICE_DECISION = "notice-decision"  # the CCC's review outcome, to the requester
    NOTICE = "notice"  # a notice's current state, broadcast to its scope
    DIFFUSION_RECALL = "diffusion-recall"  # the CCC withdraws a diffusion from its recipients
    RENEWAL_PROMPT = "renewal-prompt"  # a notice nears its expiry: renew it or let it lapse
    NOTICE_ACTION = "notice-action"  # the requester suspends, reinstates, renews or cancels
    ACKNOWLEDGEMENT = "ack"  # a recipient says it has handled a message
    DELIVERY_RECEIPT = "delivery-receipt"  # the CCC says it delivered a message
    TEAM_REQUEST = "team-request"  # an NCB asks the CCC for a response team
    TEAM_DECISION = "team-decision"  # the CCC approves or declines a team request
    TEAM_REPORT = "team-report"  # a deployed team reports from the field
    TEAM_CONVERSION = "team-conversion"  # the CCC turns an IMEST into an IRT in a crisis
    DEPLOYMENT_CLOSED = "deployment-closed"  # the CCC ends a deployment; the team's keys lapse
    CHECK_REQUEST = "check-request"  # a batch of database checks (schemas/checks.py)
    CHECK_ANSWER = "check-answer"  # the CCC's per-item answer to a check request
    HIT_CONFIRMATION_REQUEST = "hit-confirmation-request"  # the CCC asks a record's owner
    HIT_CONFIRMATION = "hit-confirmation"  # the owner confirms (or not) that a hit stands
    MULTI_COUNTRY_QUERY = "multi-country-query"  # one question to several NCBs at once
    MULTI_COUNTRY_REPLY = "multi-country-reply"  # one NCB's reply to it
    CONSOLIDATED_ANSWER = "consolidated-answer"  # the replies gathered, silences named
    STOLEN_VEHICLE_REPORT = "stolen-vehicle-report"  # an NCB reports a vehicle stolen
    STOLEN_VEHICLE_UPDATE = "stolen-vehicle-update"  # the CCC circulates it to teams concerned


class Precedence(StrEnum):
    """The military precedence scale, highest first."""

    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"

    @property
    def rank(self) -> int:
        """0 for FLASH (most urgent) up to 3 for ROUTINE."""
        return _RANK[self]

    @property
    def lane(self) -> str:
        """The lane name in topic names: ``flash``, ``immediate``, ``priority``, ``routine``."""
        return self.value.lower()


_RANK = {
    Precedence.FLASH: 0,
    Precedence.IMMEDIATE: 1,
    Precedence.PRIORITY: 2,
    Precedence.ROUTINE: 3,
}


class Language(StrEnum):
    """The CCC's four working languages."""

    AR = "ar"
    EN = "en"
    ES = "es"
    FR = "fr"


class HeaderFlag(StrEnum):
    """Facts a sender declares in clear that the priority rules weigh."""

    WANTED_PERSON_HIT = "wanted-person-hit"
    STOLEN_DOCUMENT_HIT = "stolen-document-hit"
    THREAT_TO_LIFE = "threat-to-life"
    MASS_CASUALTY = "mass-casualty"


class Suite(StrEnum):
    """The HPKE suite that wraps the data key for each recipient (RFC 9180 names)."""

    X25519 = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM"
    MLKEM768_X25519 = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _check_uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise ValueError("must be a lowercase canonical UUID (8-4-4-4-12 hex)")
    return value


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: the one textual form times take on the wire."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return moment.astimezone(UTC)


MessageId = Annotated[str, AfterValidator(_check_uuid)]
TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
UtcTimestamp = Annotated[
    datetime,
    AfterValidator(_require_aware),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _distinct_flags(values: list[HeaderFlag]) -> list[HeaderFlag]:
    if len(set(values)) != len(values):
        raise ValueError("flags must not repeat")
    return values


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("recipients must not repeat")
    return values


class RoutingHeader(BaseModel):
    """Everything the CCC needs to validate, prioritise and route a message."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    message_id: MessageId
    sender: ParticipantId
    recipients: Annotated[
        list[RecipientId], Field(min_length=1, max_length=MAX_RECIPIENTS), AfterValidator(_unique)
    ]
    message_type: MessageType
    precedence: Precedence
    created_at: UtcTimestamp
    language: Language
    case_id: ShortText | None = None
    correlation_id: ShortText | None = None
    trace_id: TraceId
    handling: HandlingCode = HandlingCode.H0
    tlp: Tlp = Tlp.AMBER
    evaluation: Evaluation = "B2"
    flags: Annotated[
        list[HeaderFlag], Field(max_length=len(HeaderFlag)), AfterValidator(_distinct_flags)
    ] = Field(default_factory=list)
    suite: Suite = Suite.X25519
