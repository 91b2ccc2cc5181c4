"""Nominal data: the persons of every Red Notice in force, kept in step with the notices.

Theory of operation
-------------------
Unlike the other databases this one is not generated: whoever publishes, updates or
cancels a Red Notice calls ``upsert(notice_id, person, issuing_ncb)`` or
``remove(notice_id)``, so a check only ever hits a notice in force. Names are matched as
a border officer's query would need: ``text.name_key`` case-folds, strips accents, turns
punctuation into spaces and sorts the words, so "MÜLLER, Hans-Peter", "hans peter muller"
and "Muller Hans Peter" are one key. The index maps that key to the notices under it, so a
lookup is one dict probe, then a filter: a date of birth or nationality given on both
sides must agree; one missing on either side does not exclude.

Worked example::

    index = NominalIndex()
    index.upsert("2026/1", Person(family_name="Müller", forenames="Hans-Peter",
                                  date_of_birth="1970-01-31"), issuing_ncb="DEU")
    index.lookup("hans peter MULLER", date_of_birth="1970-01-31")   # -> (the record,)
    index.lookup("hans peter muller", date_of_birth="1971-01-31")   # -> ()
    index.remove("2026/1")                                          # notice cancelled
"""

from __future__ import annotations

import random

from schemas.checks import Person, WantedPersonRecord
from streams.databases.text import name_key

__all__ = ["NominalIndex", "full_name"]


def full_name(person: Person) -> str:
    return f"{person.forenames} {person.family_name}"


class NominalIndex:
    """Red Notice subjects by normalised name; updated in place, looked up in O(1)."""

    __slots__ = ("_by_key", "_by_notice")

    def __init__(self) -> None:
        self._by_notice: dict[str, WantedPersonRecord] = {}
        self._by_key: dict[str, set[str]] = {}

    def upsert(self, notice_id: str, person: Person, issuing_ncb: str) -> WantedPersonRecord:
        """Add the notice's subject, or replace it when the notice was updated."""
        self.remove(notice_id)
        record = WantedPersonRecord(notice_id=notice_id, person=person, issuing_ncb=issuing_ncb)
        self._by_notice[notice_id] = record
        self._by_key.setdefault(name_key(full_name(person)), set()).add(notice_id)
        return record

    def remove(self, notice_id: str) -> bool:
        """Forget a cancelled (or expired) notice; False if it was not in force."""
        record = self._by_notice.pop(notice_id, None)
        if record is None:
            return False
        key = name_key(full_name(record.person))
        notices = self._by_key[key]
        notices.discard(notice_id)
        if not notices:
            del self._by_key[key]
        return True

    def lookup(
        self, name: str, date_of_birth: str | None = None, nationality: str | None = None
    ) -> tuple[WantedPersonRecord, ...]:
        """Notices in force whose subject bears ``name`` (any word order), by notice id."""
        found = []
        for notice_id in sorted(self._by_key.get(name_key(name), ())):
            record = self._by_notice[notice_id]
            person = record.person
            if date_of_birth and person.date_of_birth and date_of_birth != person.date_of_birth:
                continue
            if nationality and person.nationality and nationality != person.nationality:
                continue
            found.append(record)
        return tuple(found)

    def get(self, notice_id: str) -> WantedPersonRecord | None:
        return self._by_notice.get(notice_id)

    def sample(self, rng: random.Random) -> WantedPersonRecord | None:
        """A notice in force picked with ``rng``, or None when there is none."""
        if not self._by_notice:
            return None
        return self._by_notice[rng.choice(sorted(self._by_notice))]

    def __len__(self) -> int:
        return len(self._by_notice)

    def __contains__(self, notice_id: object) -> bool:
        return notice_id in self._by_notice
