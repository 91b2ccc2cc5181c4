"""Message bodies: what is sealed inside the envelope, one model per message type.

A body's ``type`` must equal the header's ``message_type``; ``open_sealed`` checks it,
so a sender cannot label a notice request as a routine message to slip past review.
The database-check exchange (check requests and answers, hit confirmations, multi-country
queries) has its models in ``schemas.checks``; the union below includes them.
"""

from __future__ import annotations

from enum import StrEnum
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
)
from schemas.header import MessageId, MessageType, Precedence, UtcTimestamp
from schemas.participants import ParticipantId, RecipientId

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
    "DiffusionBody",
    "MessageBody",
    "NoticeColour",
    "NoticeRequestBody",
    "NoticeSubject",
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
    """An alert an NCB circulates directly to several NCBs, without the CCC's review."""

    type: Literal[MessageType.DIFFUSION] = MessageType.DIFFUSION
    subject: Line
    text: Text
    purpose: Line


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


class NoticeColour(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"
    BLACK = "black"
    GREEN = "green"
    ORANGE = "orange"
    PURPLE = "purple"
    UNSC_SPECIAL = "interpol-unsc-special"


class NoticeSubject(_Body):
    name: Line
    date_of_birth: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    nationality: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    description: Text | None = None


class NoticeRequestBody(_Body):
    """An NCB asks the General Secretariat to publish a notice."""

    type: Literal[MessageType.NOTICE_REQUEST] = MessageType.NOTICE_REQUEST
    colour: NoticeColour
    subject: NoticeSubject
    offence_category: Line
    facts: Text
    judicial_basis: Text | None = None


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


Body = Annotated[
    MessageBody
    | DiffusionBody
    | UrgentRequestBody
    | DbCheckQueryBody
    | DbCheckResultBody
    | NoticeRequestBody
    | AcknowledgementBody
    | DeliveryReceiptBody
    | CheckRequest
    | CheckAnswer
    | HitConfirmationRequest
    | HitConfirmation
    | MultiCountryQuery
    | MultiCountryReply
    | ConsolidatedAnswer,
    Field(discriminator="type"),
]

BODY_ADAPTER: TypeAdapter[Body] = TypeAdapter(Body)
