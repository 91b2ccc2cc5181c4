"""Message bodies: what is sealed inside the envelope, one model per message type.

A body's ``type`` must equal the header's ``message_type``; ``open_sealed`` checks it,
so a sender cannot label a notice request as a routine message to slip past review.
The notice and diffusion bodies wrap the contracts of ``schemas.notices``.
The database-check exchange (check requests and answers, hit confirmations, multi-country
queries) has its models in ``schemas.checks``; the union below includes them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    Database,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    StolenVehicleReport,
    StolenVehicleUpdate,
)
from schemas.header import MessageId, MessageType, Precedence, UtcTimestamp
from schemas.notices import (
    DiffusionRecall,
    Notice,
    NoticeAction,
    NoticeColour,
    NoticeId,
    NoticeRequest,
    NoticeSubject,
    RenewalPrompt,
    ReviewOutcome,
)
from schemas.participants import ParticipantId, RecipientId
from schemas.registry import Region
from schemas.teams import TeamDecision, TeamId, TeamKind, TeamReport, TeamRequest

__all__ = [
    "BODY_ADAPTER",
    "AcknowledgementBody",
    "Body",
    "CheckItem",
    "CheckOutcome",
    "Database",
    "DbCheckQueryBody",
    "DbCheckResultBody",
    "DeliveryReceiptBody",
    "DeploymentClosedBody",
    "DiffusionBody",
    "DiffusionRecallBody",
    "MessageBody",
    "NoticeActionBody",
    "NoticeBody",
    "NoticeColour",
    "NoticeDecisionBody",
    "NoticeRequestBody",
    "NoticeSubject",
    "RenewalPromptBody",
    "TeamConversionBody",
    "TeamDecisionBody",
    "TeamReportBody",
    "TeamRequestBody",
    "UrgentRequestBody",
]

Text = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
Line = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class MessageBody(_Body):
    """A bilateral or multilateral police message between NCBs."""

    type: Literal[MessageType.MESSAGE] = MessageType.MESSAGE
    subject: Line
    text: Text


class DiffusionBody(_Body):
    """An alert an NCB circulates directly to several NCBs, without the CCC's review.

    The header's recipients are the NCBs it reaches; ``region``, when set, says it was
    addressed to that whole region (``streams.core.diffusions.expand_diffusion`` lists them).
    """

    type: Literal[MessageType.DIFFUSION] = MessageType.DIFFUSION
    subject: Line
    text: Text
    purpose: Line
    region: Region | None = None


class UrgentRequestBody(_Body):
    """A request for the CCC's immediate help in a crisis."""

    type: Literal[MessageType.URGENT_REQUEST] = MessageType.URGENT_REQUEST
    subject: Line
    situation: Line
    text: Text


class CheckItem(_Body):
    """One thing to look up: a document number, a VIN, a person, an artwork id."""

    database: Database
    key: Line
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None


class DbCheckQueryBody(_Body):
    """One or many lookups (a flight's passenger list is a batch)."""

    type: Literal[MessageType.DB_CHECK_QUERY] = MessageType.DB_CHECK_QUERY
    items: Annotated[list[CheckItem], Field(min_length=1, max_length=1_000)]


class CheckOutcome(_Body):
    item: CheckItem
    hit: bool
    record_ref: Line | None = None
    owner: ParticipantId | None = None


class DbCheckResultBody(_Body):
    type: Literal[MessageType.DB_CHECK_RESULT] = MessageType.DB_CHECK_RESULT
    query_id: MessageId
    outcomes: Annotated[list[CheckOutcome], Field(max_length=1_000)]


class NoticeRequestBody(_Body):
    """An NCB asks the General Secretariat to publish a notice (reviewed before it circulates)."""

    type: Literal[MessageType.NOTICE_REQUEST] = MessageType.NOTICE_REQUEST
    request: NoticeRequest


class NoticeDecisionBody(_Body):
    """The review's outcome, sent to the requesting NCB; ``notice_id`` set when published."""

    type: Literal[MessageType.NOTICE_DECISION] = MessageType.NOTICE_DECISION
    outcome: ReviewOutcome
    notice_id: NoticeId | None = None


class NoticeBody(_Body):
    """A notice's current state (published, suspended, renewed, cancelled, expired)."""

    type: Literal[MessageType.NOTICE] = MessageType.NOTICE
    notice: Notice


class DiffusionRecallBody(_Body):
    """The CCC withdraws a diffusion: every original recipient purges its copy."""

    type: Literal[MessageType.DIFFUSION_RECALL] = MessageType.DIFFUSION_RECALL
    recall: DiffusionRecall


class RenewalPromptBody(_Body):
    """The notice expires soon: the requester renews it or lets it lapse."""

    type: Literal[MessageType.RENEWAL_PROMPT] = MessageType.RENEWAL_PROMPT
    prompt: RenewalPrompt


class NoticeActionBody(_Body):
    """The requesting NCB suspends, reinstates, renews or cancels its notice (to ``ccc``)."""

    type: Literal[MessageType.NOTICE_ACTION] = MessageType.NOTICE_ACTION
    notice_id: NoticeId
    action: NoticeAction
    reason: Line | None = None


class AcknowledgementBody(_Body):
    """A recipient has handled a message; it stops that message's handling clock."""

    type: Literal[MessageType.ACKNOWLEDGEMENT] = MessageType.ACKNOWLEDGEMENT
    acknowledged: MessageId
    note: Line | None = None


class DeliveryReceiptBody(_Body):
    """The CCC delivered a message into one recipient's inbox."""

    type: Literal[MessageType.DELIVERY_RECEIPT] = MessageType.DELIVERY_RECEIPT
    delivered: MessageId
    recipient: RecipientId
    hub: ParticipantId
    precedence: Precedence
    delivered_at: UtcTimestamp


class TeamRequestBody(_Body):
    """An NCB asks the CCC for a response team (``request.requester`` is the sender)."""

    type: Literal[MessageType.TEAM_REQUEST] = MessageType.TEAM_REQUEST
    request: TeamRequest


class TeamDecisionBody(_Body):
    """The CCC's answer to the team request ``request_id``."""

    type: Literal[MessageType.TEAM_DECISION] = MessageType.TEAM_DECISION
    request_id: MessageId
    decision: TeamDecision


class TeamReportBody(_Body):
    """A deployed team's report; a DVI team's names its phase."""

    type: Literal[MessageType.TEAM_REPORT] = MessageType.TEAM_REPORT
    report: TeamReport


class TeamConversionBody(_Body):
    """A crisis at a major event: the IMEST ``team`` works on as an IRT, same id and keys."""

    type: Literal[MessageType.TEAM_CONVERSION] = MessageType.TEAM_CONVERSION
    team: TeamId
    to_kind: Literal[TeamKind.IRT_CRIME, TeamKind.IRT_DVI]
    crisis: Text


class DeploymentClosedBody(_Body):
    """The deployment of ``team`` is over; from ``closed_at`` its keys take no new traffic."""

    type: Literal[MessageType.DEPLOYMENT_CLOSED] = MessageType.DEPLOYMENT_CLOSED
    team: TeamId
    closed_at: UtcTimestamp
    reason: Line


Body = Annotated[
    MessageBody
    | DiffusionBody
    | UrgentRequestBody
    | DbCheckQueryBody
    | DbCheckResultBody
    | NoticeRequestBody
    | NoticeDecisionBody
    | NoticeBody
    | DiffusionRecallBody
    | RenewalPromptBody
    | NoticeActionBody
    | AcknowledgementBody
    | DeliveryReceiptBody
    | TeamRequestBody
    | TeamDecisionBody
    | TeamReportBody
    | TeamConversionBody
    | DeploymentClosedBody
    | CheckRequest
    | CheckAnswer
    | HitConfirmationRequest
    | HitConfirmation
    | MultiCountryQuery
    | MultiCountryReply
    | ConsolidatedAnswer
    | StolenVehicleReport
    | StolenVehicleUpdate,
    Field(discriminator="type"),
]

BODY_ADAPTER: TypeAdapter[Body] = TypeAdapter(Body)
