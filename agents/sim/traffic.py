"""What the simulated NCBs say to each other: a seeded, realistic traffic mix.

Mostly routine bilateral messages and database checks, some diffusions within a region,
some urgent requests to the CCC, rare FLASH; plus a small share of deliberately bad
records (``Fault``) so the dead-letter path is exercised with a known expected reason.
Pure: the same seed gives the same traffic.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from enum import StrEnum

from schemas.bodies import (
    Body,
    CheckItem,
    Database,
    DbCheckQueryBody,
    DiffusionBody,
    MessageBody,
    UrgentRequestBody,
)
from schemas.errors import RejectReason
from schemas.header import HeaderFlag, Language, Precedence
from schemas.participants import CCC

__all__ = ["EXPECTED_REASON", "Fault", "Planned", "TrafficMix"]


class Fault(StrEnum):
    """A way a record can be bad, each with the dead-letter reason it must earn."""

    TAMPERED_BODY = "tampered-body"
    TAMPERED_HEADER = "tampered-header"
    WRONG_SIGNATURE = "wrong-signature"
    UNKNOWN_SENDER = "unknown-sender"
    UNKNOWN_RECIPIENT = "unknown-recipient"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    STALE = "stale"
    REPLAYED = "replayed"
    KEY_NOT_SENDER = "key-not-sender"


EXPECTED_REASON: dict[Fault, RejectReason] = {
    Fault.TAMPERED_BODY: RejectReason.TAMPERED,
    Fault.TAMPERED_HEADER: RejectReason.TAMPERED,
    Fault.WRONG_SIGNATURE: RejectReason.BAD_SIGNATURE,
    Fault.UNKNOWN_SENDER: RejectReason.UNKNOWN_SENDER,
    Fault.UNKNOWN_RECIPIENT: RejectReason.UNKNOWN_RECIPIENT,
    Fault.MALFORMED: RejectReason.MALFORMED,
    Fault.OVERSIZED: RejectReason.OVERSIZED,
    Fault.STALE: RejectReason.STALE,
    Fault.REPLAYED: RejectReason.REPLAYED,
    Fault.KEY_NOT_SENDER: RejectReason.KEY_NOT_SENDER,
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One message a simulated NCB will send (``fault`` set: it will be spoiled on purpose)."""

    sender: str
    recipients: tuple[str, ...]
    body: Body
    precedence: Precedence
    language: Language
    flags: tuple[HeaderFlag, ...] = ()
    fault: Fault | None = None


_SUBJECTS = (
    "Request for criminal record check",
    "Follow-up on extradition file",
    "Vehicle seized at border crossing",
    "Identification of suspect via fingerprints",
    "Cash courier intercepted",
    "Missing person last seen near border",
    "Cybercrime: phishing infrastructure takedown",
    "Stolen artwork offered at auction",
)
_SITUATIONS = ("hostage situation", "terrorist attack", "mass-casualty disaster", "kidnapping")


class TrafficMix:
    """Draws planned messages for the given NCBs and their regions, from ``seed``."""

    def __init__(
        self,
        regions: dict[str, list[str]],
        languages: dict[str, Language],
        *,
        seed: int,
        fault_share: float = 0.01,
    ) -> None:
        self._rng = random.Random(seed)
        self._regions = {r: sorted(m) for r, m in regions.items() if m}
        self._region_of = {c: r for r, members in self._regions.items() for c in members}
        self._ncbs = sorted(self._region_of)
        self._languages = languages
        self._fault_share = fault_share

    def next(self) -> Planned:
        rng = self._rng
        sender = rng.choice(self._ncbs)
        planned = self._draw(sender)
        if rng.random() < self._fault_share:
            fault = rng.choice(list(Fault))
            return dataclasses.replace(planned, fault=fault)
        return planned

    def _other(self, sender: str) -> str:
        while (choice := self._rng.choice(self._ncbs)) == sender:
            pass
        return choice

    def _draw(self, sender: str) -> Planned:
        rng = self._rng
        language = self._languages.get(sender, Language.EN)
        roll = rng.random()
        text = " ".join(rng.choices(_SUBJECTS, k=6))
        if roll < 0.55:  # bilateral, sometimes to two or three bureaus
            count = 1 if rng.random() < 0.85 else rng.randint(2, 3)
            chosen = {self._other(sender) for _ in range(count)}
            declared = Precedence.ROUTINE if rng.random() < 0.8 else Precedence.PRIORITY
            if rng.random() < 0.02:
                declared = Precedence.FLASH  # over-declared: the CCC will cap it
            body: Body = MessageBody(subject=rng.choice(_SUBJECTS), text=text)
            return Planned(sender, tuple(sorted(chosen)), body, declared, language)
        if roll < 0.80:  # database checks go to the CCC
            items = [
                CheckItem(database=Database.SLTD, key=f"P{rng.randrange(10**8):08d}")
                for _ in range(rng.choice((1, 1, 1, 3, 12)))
            ]
            return Planned(
                sender, (CCC,), DbCheckQueryBody(items=items), Precedence.ROUTINE, language
            )
        if roll < 0.93:  # diffusion to part of the sender's region
            region = self._regions[self._region_of[sender]]
            others = [c for c in region if c != sender]
            recipients = tuple(sorted(rng.sample(others, k=min(len(others), rng.randint(3, 8)))))
            body = DiffusionBody(subject=rng.choice(_SUBJECTS), text=text, purpose="locate")
            return Planned(sender, recipients, body, Precedence.PRIORITY, language)
        if roll < 0.99:  # urgent request to the CCC
            flags: tuple[HeaderFlag, ...] = (
                (HeaderFlag.THREAT_TO_LIFE,) if rng.random() < 0.3 else ()
            )
            body = UrgentRequestBody(
                subject="Urgent assistance", situation=rng.choice(_SITUATIONS), text=text
            )
            return Planned(sender, (CCC,), body, Precedence.IMMEDIATE, language, flags)
        # rare FLASH: a wanted person located, with lives at risk; only an urgent request
        # with a life at risk reaches FLASH from an NCB (docs/priority-rules.md)
        body = UrgentRequestBody(
            subject="Wanted person located: immediate action", situation="armed suspect", text=text
        )
        flags = (HeaderFlag.WANTED_PERSON_HIT, HeaderFlag.THREAT_TO_LIFE)
        return Planned(sender, (self._other(sender), CCC), body, Precedence.FLASH, language, flags)
