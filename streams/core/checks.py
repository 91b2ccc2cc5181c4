"""Answer a batch of database checks, and say which hits the CCC must act on at once.

Theory of operation
-------------------
``answer_check(request, databases, now, roster=...)`` looks every item of a
``CheckRequest`` up in the database its kind names (travel document -> SLTD, vehicle ->
SMV by VIN and/or plate, person -> the nominal index of Red Notices in force, artwork ->
Works of Art by keywords) and returns a ``CheckOutcome``, effects as data:

* ``answer``: the ``CheckAnswer`` for the asker, one ``ItemResult`` per item, in order;
* ``escalations``: one FLASH ``Escalation`` per hit on a Red Notice subject or a stolen,
  lost or revoked travel document, addressed to the CCC hub on duty, the asker (NCB or
  team) and the record's owner (the NCB that issued the notice or reported the document),
  each named once, in that order;
* ``confirmations``: one ``HitConfirmationRequest`` per hit, to the record's owner,
  ``urgent`` for nominal and SLTD hits and ``routine`` for SMV and Works of Art hits; the
  shell opens a hit-confirmation exchange for each (``streams.core.desk_state``).

Nothing is sent or logged here; the shell seals and publishes.

Worked example: FRA asks about passenger "Jean Dupont" (a Red Notice issued by BEL) and
passport ``12AB34567`` (reported stolen by ITA), while Lyon is on duty. The answer has two
results, both hits; two escalations go FLASH to ``("hub:lyon", "FRA", "BEL")`` flagged
``wanted-person-hit`` and ``("hub:lyon", "FRA", "ITA")`` flagged ``stolen-document-hit``;
BEL and ITA are each asked to confirm within 10 minutes.

Lookups read the SQLite files opened read-only by ``streams.databases``: a file read, not
a side effect; the result depends only on the request, the seeded databases and ``now``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from schemas.checks import (
    ArtworkItem,
    CheckAnswer,
    CheckRequest,
    CheckRequestItem,
    Database,
    DatabaseRecord,
    HitConfirmationRequest,
    ItemResult,
    PersonItem,
    TravelDocumentItem,
    TravelDocumentRecord,
    Urgency,
    VehicleItem,
    VehicleRecord,
    WantedPersonRecord,
)
from schemas.header import HeaderFlag, Precedence
from schemas.participants import hub_id
from streams.core.clocks import as_utc
from streams.core.roster import DutyRoster
from streams.databases import Databases

__all__ = ["URGENT_DATABASES", "CheckOutcome", "Escalation", "answer_check", "confirmation_id"]

URGENT_DATABASES = frozenset({Database.NOMINAL, Database.SLTD})
_FLAGS = {
    Database.NOMINAL: HeaderFlag.WANTED_PERSON_HIT,
    Database.SLTD: HeaderFlag.STOLEN_DOCUMENT_HIT,
}
_NAMESPACE = uuid.UUID("6f0d3c52-8a47-4f5e-9b1f-24a7c0c1e247")


@dataclass(frozen=True, slots=True)
class Escalation:
    """A hit the operations room acts on now: send FLASH to ``recipients``."""

    correlation_id: str
    item_index: int
    record: WantedPersonRecord | TravelDocumentRecord
    recipients: tuple[str, ...]  # the hub on duty, the asker, the record's owner
    flag: HeaderFlag
    precedence: Precedence = Precedence.FLASH


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The answer to the asker and the effects the hits call for."""

    answer: CheckAnswer
    escalations: tuple[Escalation, ...]
    confirmations: tuple[HitConfirmationRequest, ...]


def answer_check(
    request: CheckRequest, databases: Databases, now: datetime, *, roster: DutyRoster
) -> CheckOutcome:
    """Look every item up; see the module docstring for what comes back."""
    now = as_utc(now)
    on_duty = hub_id(roster.hub_on_duty(now))
    results: list[ItemResult] = []
    escalations: list[Escalation] = []
    confirmations: list[HitConfirmationRequest] = []
    for index, item in enumerate(request.items):
        hits = _look_up(item, databases)
        results.append(ItemResult(index=index, item=item, hits=hits))
        for record in hits:
            urgent = record.database in URGENT_DATABASES
            confirmations.append(
                HitConfirmationRequest(
                    confirmation_id=confirmation_id(request.correlation_id, index, record),
                    correlation_id=request.correlation_id,
                    asker=request.asker,
                    owner=record.owner,
                    record=record,
                    urgency=Urgency.URGENT if urgent else Urgency.ROUTINE,
                    requested_at=now,
                )
            )
            if isinstance(record, WantedPersonRecord | TravelDocumentRecord):
                escalations.append(
                    Escalation(
                        correlation_id=request.correlation_id,
                        item_index=index,
                        record=record,
                        recipients=tuple(dict.fromkeys((on_duty, request.asker, record.owner))),
                        flag=_FLAGS[record.database],
                    )
                )
    answer = CheckAnswer(
        correlation_id=request.correlation_id,
        asker=request.asker,
        results=tuple(results),
        answered_at=now,
    )
    return CheckOutcome(answer, tuple(escalations), tuple(confirmations))


def confirmation_id(correlation_id: str, index: int, record: DatabaseRecord) -> str:
    """A stable id for one hit's confirmation exchange (the same hit, the same id)."""
    return str(uuid.uuid5(_NAMESPACE, f"{correlation_id}\x1f{index}\x1f{_key(record)}"))


def _key(record: DatabaseRecord) -> str:
    match record:
        case TravelDocumentRecord():
            return f"SLTD:{record.issuing_country}:{record.number}"
        case VehicleRecord():
            return f"SMV:{record.vin}"
        case WantedPersonRecord():
            return f"NOMINAL:{record.notice_id}"
        case _:
            return f"WOA:{record.record_id}"


def _look_up(item: CheckRequestItem, databases: Databases) -> tuple[DatabaseRecord, ...]:
    match item:
        case TravelDocumentItem():
            document = databases.sltd.lookup(item.number, item.issuing_country)
            return () if document is None else (document,)
        case VehicleItem():
            vehicles: dict[str, VehicleRecord] = {}
            if item.vin is not None and (by_vin := databases.smv.lookup_vin(item.vin)):
                vehicles[by_vin.vin] = by_vin
            if item.plate is not None and item.country is not None:
                for vehicle in databases.smv.lookup_plate(item.plate, item.country):
                    vehicles.setdefault(vehicle.vin, vehicle)
            return tuple(vehicles.values())
        case PersonItem():
            return databases.nominal.lookup(
                f"{item.forenames} {item.family_name}", item.date_of_birth, item.nationality
            )
        case ArtworkItem():
            return databases.works_of_art.search(item.keywords)
