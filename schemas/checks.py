"""Database checks: what is asked, what the databases hold, what is answered.

Theory of operation
-------------------
An NCB or a deployed team sends the CCC a ``CheckRequest``: a batch of items (a flight's
passenger list is a batch of persons and their travel documents). The CCC looks every item
up in the databases and answers with one ``CheckAnswer`` carrying one ``ItemResult`` per
item, in order: no hit (``hits`` empty) or the records it hit, each naming its database.

A hit is not yet a fact: the NCB that owns the record (reported the document, issued the
notice) confirms that it still stands, through ``HitConfirmationRequest`` and
``HitConfirmation``. A ``MultiCountryQuery`` asks several NCBs one question at once; the
CCC gathers their ``MultiCountryReply`` messages into one ``ConsolidatedAnswer``, naming the
NCBs that stayed silent.

The seven message bodies here carry a ``type`` equal to the header's ``message_type``, like
every model in ``schemas.bodies`` (whose union includes them).

Worked example: ``CheckRequest(correlation_id="flight-AF1234", asker="team:imest-2026-01",
items=(PersonItem(family_name="Dupont", forenames="Jean", date_of_birth="1970-01-31"),
TravelDocumentItem(number="12AB34567", issuing_country="FRA")))`` is answered by a
``CheckAnswer`` with two results; if the passport is in SLTD, the second result's ``hits``
holds its ``TravelDocumentRecord``, whose ``owner`` (the reporting NCB) is asked to confirm.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.header import MessageType, UtcTimestamp
from schemas.participants import ParticipantId

__all__ = [
    "ArtworkItem",
    "ArtworkRecord",
    "CheckAnswer",
    "CheckRequest",
    "CheckRequestItem",
    "ConsolidatedAnswer",
    "Database",
    "DatabaseRecord",
    "DocumentStatus",
    "DocumentType",
    "HitConfirmation",
    "HitConfirmationRequest",
    "ItemResult",
    "MultiCountryQuery",
    "MultiCountryReply",
    "Person",
    "PersonItem",
    "StolenVehicleReport",
    "StolenVehicleUpdate",
    "TravelDocumentItem",
    "TravelDocumentRecord",
    "Urgency",
    "VehicleItem",
    "VehicleRecord",
    "WantedPersonRecord",
]

Line = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
Iso3 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
IsoDate = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Vin = Annotated[str, StringConstraints(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]
MAX_ITEMS = 1_000


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Database(StrEnum):
    SLTD = "SLTD"  # stolen and lost travel documents
    SMV = "SMV"  # stolen motor vehicles
    NOMINAL = "NOMINAL"  # persons, including wanted persons
    WORKS_OF_ART = "WOA"


class DocumentType(StrEnum):
    PASSPORT = "passport"
    ID_CARD = "id-card"
    VISA = "visa"
    RESIDENCE_PERMIT = "residence-permit"
    REFUGEE_TRAVEL_DOCUMENT = "refugee-travel-document"
    SEAFARER_ID = "seafarer-id"


class DocumentStatus(StrEnum):
    STOLEN = "stolen"
    LOST = "lost"
    REVOKED = "revoked"


class Urgency(StrEnum):
    """How fast an owner must confirm a hit (``streams.core.clocks.CONFIRMATION_DEADLINES``)."""

    URGENT = "urgent"
    ROUTINE = "routine"


# --- database records ---


class TravelDocumentRecord(_Model):
    """One SLTD entry: a blank or issued document reported stolen, lost or revoked."""

    database: Literal[Database.SLTD] = Database.SLTD
    number: Line
    issuing_country: Iso3
    document_type: DocumentType
    status: DocumentStatus
    reported_on: IsoDate
    reporting_ncb: Iso3

    @property
    def owner(self) -> str:
        return self.reporting_ncb


class VehicleRecord(_Model):
    """One SMV entry; the VIN carries a valid ISO 3779 / North American check digit."""

    database: Literal[Database.SMV] = Database.SMV
    vin: Vin
    plate: Line
    registration_country: Iso3
    make: Line
    model: Line
    colour: Line
    reported_on: IsoDate
    reporting_ncb: Iso3

    @property
    def owner(self) -> str:
        return self.reporting_ncb


class ArtworkRecord(_Model):
    """One Works of Art entry."""

    database: Literal[Database.WORKS_OF_ART] = Database.WORKS_OF_ART
    record_id: Line
    title: Line
    artist: Line
    category: Line
    dimensions: Line
    country: Iso3
    stolen_on: IsoDate
    reporting_ncb: Iso3

    @property
    def owner(self) -> str:
        return self.reporting_ncb


class Person(_Model):
    """A person as a notice or a check names them."""

    family_name: Line
    forenames: Line
    date_of_birth: IsoDate | None = None
    nationality: Iso3 | None = None


class WantedPersonRecord(_Model):
    """A nominal entry: the subject of a Red Notice in force."""

    database: Literal[Database.NOMINAL] = Database.NOMINAL
    notice_id: Line
    person: Person
    issuing_ncb: Iso3

    @property
    def owner(self) -> str:
        return self.issuing_ncb


DatabaseRecord = Annotated[
    TravelDocumentRecord | VehicleRecord | ArtworkRecord | WantedPersonRecord,
    Field(discriminator="database"),
]


# --- what is asked ---


class TravelDocumentItem(_Model):
    kind: Literal["travel-document"] = "travel-document"
    number: Line
    issuing_country: Iso3


class VehicleItem(_Model):
    """A vehicle by VIN, or by plate and registration country."""

    kind: Literal["vehicle"] = "vehicle"
    vin: Vin | None = None
    plate: Line | None = None
    country: Iso3 | None = None

    @model_validator(mode="after")
    def _vin_or_plate(self) -> VehicleItem:
        if self.vin is None and (self.plate is None or self.country is None):
            raise ValueError("a vehicle item needs a vin, or a plate with its country")
        return self


class PersonItem(_Model):
    kind: Literal["person"] = "person"
    family_name: Line
    forenames: Line
    date_of_birth: IsoDate | None = None
    nationality: Iso3 | None = None


class ArtworkItem(_Model):
    """Keywords from the title or the artist; every keyword must match."""

    kind: Literal["artwork"] = "artwork"
    keywords: Annotated[tuple[Line, ...], Field(min_length=1, max_length=16)]


CheckRequestItem = Annotated[
    TravelDocumentItem | VehicleItem | PersonItem | ArtworkItem, Field(discriminator="kind")
]


class CheckRequest(_Model):
    """A batch of checks from an NCB or a team, answered item by item."""

    type: Literal[MessageType.CHECK_REQUEST] = MessageType.CHECK_REQUEST
    correlation_id: Line
    asker: ParticipantId
    items: Annotated[tuple[CheckRequestItem, ...], Field(min_length=1, max_length=MAX_ITEMS)]


# --- what is answered ---


class ItemResult(_Model):
    """The answer for ``items[index]``: no hit (``hits`` empty) or the records hit."""

    index: Annotated[int, Field(ge=0, lt=MAX_ITEMS)]
    item: CheckRequestItem
    hits: Annotated[tuple[DatabaseRecord, ...], Field(max_length=64)] = ()

    @property
    def hit(self) -> bool:
        return bool(self.hits)


class CheckAnswer(_Model):
    type: Literal[MessageType.CHECK_ANSWER] = MessageType.CHECK_ANSWER
    correlation_id: Line
    asker: ParticipantId
    results: Annotated[tuple[ItemResult, ...], Field(max_length=MAX_ITEMS)]
    answered_at: UtcTimestamp


class HitConfirmationRequest(_Model):
    """The CCC asks the record's owner NCB to confirm that a hit still stands."""

    type: Literal[MessageType.HIT_CONFIRMATION_REQUEST] = MessageType.HIT_CONFIRMATION_REQUEST
    confirmation_id: Line
    correlation_id: Line  # the check request's
    asker: ParticipantId
    owner: Iso3
    record: DatabaseRecord
    urgency: Urgency
    requested_at: UtcTimestamp


class HitConfirmation(_Model):
    """The owner's word: the record stands (``confirmed``) or is out of date."""

    type: Literal[MessageType.HIT_CONFIRMATION] = MessageType.HIT_CONFIRMATION
    confirmation_id: Line
    owner: Iso3
    confirmed: bool
    note: Line | None = None
    confirmed_at: UtcTimestamp


def _distinct_targets(targets: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(targets)) != len(targets):
        raise ValueError("target NCBs must not repeat")
    return targets


class MultiCountryQuery(_Model):
    """One question to several NCBs; their replies are gathered for ``window_seconds``."""

    type: Literal[MessageType.MULTI_COUNTRY_QUERY] = MessageType.MULTI_COUNTRY_QUERY
    query_id: Line
    asker: ParticipantId
    targets: Annotated[
        tuple[Iso3, ...], Field(min_length=1, max_length=196), AfterValidator(_distinct_targets)
    ]
    question: Text
    window_seconds: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = 60.0


class MultiCountryReply(_Model):
    type: Literal[MessageType.MULTI_COUNTRY_REPLY] = MessageType.MULTI_COUNTRY_REPLY
    query_id: Line
    responder: Iso3
    answer: Text
    replied_at: UtcTimestamp


class ConsolidatedAnswer(_Model):
    """The replies received in the window, by NCB, and the NCBs that did not reply."""

    type: Literal[MessageType.CONSOLIDATED_ANSWER] = MessageType.CONSOLIDATED_ANSWER
    query_id: Line
    asker: ParticipantId
    answers: dict[Iso3, Text]
    silent: tuple[Iso3, ...]  # sorted
    consolidated_at: UtcTimestamp

    @property
    def complete(self) -> bool:
        return not self.silent


class StolenVehicleReport(_Model):
    """An NCB reports a vehicle stolen: the CCC circulates it to the teams it concerns."""

    type: Literal[MessageType.STOLEN_VEHICLE_REPORT] = MessageType.STOLEN_VEHICLE_REPORT
    record: VehicleRecord
    reported_at: UtcTimestamp


class StolenVehicleUpdate(_Model):
    """The CCC's real-time copy of a stolen-vehicle report, to a team whose area it concerns."""

    type: Literal[MessageType.STOLEN_VEHICLE_UPDATE] = MessageType.STOLEN_VEHICLE_UPDATE
    record: VehicleRecord
    reported_at: UtcTimestamp
    circulated_at: UtcTimestamp
