"""IMEST screening traffic: arriving travellers checked in batches, a few of them hits.

At a major event the IMEST checks every arriving passenger list against SLTD and the
wanted-person notices. ``arriving_travellers(rng, rate, hit_share, databases)`` yields one
``TravellerBatch`` per arriving flight: its offset in seconds from the start (flights
arrive as a Poisson process whose mean carries ``rate`` travellers a second), and a
``CheckRequest`` holding, per passenger, a person item and a travel-document item.

A share ``hit_share`` of passengers is a hit, each picked from a real record: half carry a
document from SLTD, half are the subject of a Red Notice in force (if there is none, the
document instead). The others are drawn fresh and redrawn if they would hit by chance, so
``expected_hits`` (the item indexes that must hit) is exact and a test or a run report can
check the answers against it.

This module sits in ``agents`` and sees the databases through the ``ScreeningSources``
protocol, which ``streams.databases.Databases`` satisfies.

Worked example: ``next(arriving_travellers(random.Random(7), rate=50.0, hit_share=0.01,
databases=dbs))`` is a flight of 80 to 300 passengers (160 to 600 items) arriving a few
seconds in, with about one passenger in a hundred a hit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from schemas.checks import (
    CheckRequest,
    CheckRequestItem,
    PersonItem,
    TravelDocumentItem,
    TravelDocumentRecord,
    WantedPersonRecord,
)

__all__ = [
    "DocumentSource",
    "PersonSource",
    "ScreeningSources",
    "TravellerBatch",
    "arriving_travellers",
]

_FORENAMES = (
    "Jean", "Maria", "Ahmed", "Wei", "Olga", "Carlos", "Aisha", "Hiroshi", "Fatima", "John",
    "Ana", "Mehmet", "Priya", "Lars", "Chloé", "Kwame", "Sofia", "Dmitri", "Nuria", "Tomás",
)  # fmt: skip
_FAMILY_NAMES = (
    "Dupont", "García", "Khan", "Wang", "Ivanova", "Silva", "Okafor", "Tanaka", "Haddad",
    "Smith", "Rossi", "Yılmaz", "Patel", "Nilsson", "Müller", "Mensah", "Kowalski", "Novak",
)  # fmt: skip
_NATIONALITIES = ("FRA", "DEU", "GBR", "USA", "ESP", "ITA", "BRA", "IND", "CHN", "NGA", "TUR")


class DocumentSource(Protocol):
    def sample(self, rng: random.Random) -> TravelDocumentRecord: ...
    def lookup(self, number: str, issuing_country: str) -> TravelDocumentRecord | None: ...


class PersonSource(Protocol):
    def sample(self, rng: random.Random) -> WantedPersonRecord | None: ...
    def lookup(
        self, name: str, date_of_birth: str | None = None, nationality: str | None = None
    ) -> tuple[WantedPersonRecord, ...]: ...


class ScreeningSources(Protocol):
    @property
    def sltd(self) -> DocumentSource: ...
    @property
    def nominal(self) -> PersonSource: ...


@dataclass(frozen=True, slots=True)
class TravellerBatch:
    """One flight's passenger checks, ``offset`` seconds after the event's start."""

    offset: float
    request: CheckRequest
    expected_hits: tuple[int, ...]  # item indexes that must come back as hits


def arriving_travellers(
    rng: random.Random,
    rate: float,
    hit_share: float,
    databases: ScreeningSources,
    *,
    asker: str = "team:imest-event",
    flight_size: tuple[int, int] = (80, 300),
) -> Iterator[TravellerBatch]:
    """Endless flights of passengers to check; the same rng state gives the same flights."""
    if rate <= 0 or not 0 <= hit_share <= 1:
        raise ValueError("rate must be > 0 travellers/s and hit_share within [0, 1]")
    low, high = flight_size
    mean_gap = (low + high) / 2 / rate
    offset = 0.0
    flight = 0
    while True:
        flight += 1
        offset += rng.expovariate(1 / mean_gap)
        items: list[CheckRequestItem] = []
        hits: list[int] = []
        for _ in range(rng.randint(low, high)):
            person, document = _clean_passenger(rng, databases)
            if rng.random() < hit_share:
                wanted = databases.nominal.sample(rng) if rng.random() < 0.5 else None
                if wanted is not None:
                    person = _as_item(wanted)
                    hits.append(len(items))
                else:
                    document = _document_item(databases.sltd.sample(rng))
                    hits.append(len(items) + 1)
            items += (person, document)
        code = f"{rng.choice('ABCDEFGHKLMNPRSTUVWXYZ')}{rng.choice('ABCDEFGHKLMNPRSTUVWXYZ')}"
        request = CheckRequest(
            correlation_id=f"flight-{code}{rng.randrange(100, 10_000)}-{flight}",
            asker=asker,
            items=tuple(items),
        )
        yield TravellerBatch(offset, request, tuple(hits))


def _clean_passenger(
    rng: random.Random, databases: ScreeningSources
) -> tuple[PersonItem, TravelDocumentItem]:
    """A passenger who hits nothing: redrawn until neither name nor document is listed."""
    while True:
        nationality = rng.choice(_NATIONALITIES)
        person = PersonItem(
            family_name=rng.choice(_FAMILY_NAMES),
            forenames=rng.choice(_FORENAMES),
            date_of_birth=f"{rng.randint(1940, 2010)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}",
            nationality=nationality,
        )
        number = f"{rng.choice('ABCDEFGHKLMNPRSTUVWXYZ')}{rng.randrange(10**8):08d}"
        document = TravelDocumentItem(number=number, issuing_country=nationality)
        name = f"{person.forenames} {person.family_name}"
        if databases.sltd.lookup(number, nationality) is None and not databases.nominal.lookup(
            name, person.date_of_birth, nationality
        ):
            return person, document


def _as_item(record: WantedPersonRecord) -> PersonItem:
    person = record.person
    return PersonItem(
        family_name=person.family_name,
        forenames=person.forenames,
        date_of_birth=person.date_of_birth,
        nationality=person.nationality,
    )


def _document_item(record: TravelDocumentRecord) -> TravelDocumentItem:
    return TravelDocumentItem(number=record.number, issuing_country=record.issuing_country)
