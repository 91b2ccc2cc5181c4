"""Notice and diffusion traffic for the simulator: requests (some refused), diffusions, recalls.

Theory of operation
-------------------
``NoticeTraffic`` is a seeded generator of what NCBs say to the CCC's notice desk. Each
``step`` returns the records of one event, sealed by the acting NCB's adapter:

* a notice request to ``ccc`` (about half the steps): mostly sound (a worldwide Red Notice
  for murder, or a regional Yellow Notice for a missing person), some that the review
  refuses (``political_share``: treason, an Article 3 category) and a few that it returns
  (a Red Notice with no judicial basis);
* a diffusion from one NCB to three others and ``ccc`` (the CCC records it);
* a recall of a diffusion sent earlier, by its own sender (``recall_share`` of them);
* a cancellation of a sound Red Notice requested earlier (``notice-action``), now and then.

The builders (``red_notice``, ``regional_alert``, ``political_request``) are also what the
tests use. Pure apart from sealing: the same seed gives the same traffic.

Worked example: ``traffic = NoticeTraffic(random.Random(7))``; call
``traffic.step(bb.adapter, now=now(), random_bytes=os.urandom)`` every 15 s (four events a
minute) and send what it returns to the inbound topic. The CCC's journal then counts
``notice-requested``, ``notice-decided`` and ``diffusion-recorded``/``-recalled`` events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from agents.ncb.adapter import NcbAdapter
from brokers.records import OutboundRecord
from schemas.bodies import (
    DiffusionBody,
    DiffusionRecallBody,
    NoticeActionBody,
    NoticeRequestBody,
)
from schemas.notices import (
    DiffusionRecall,
    NoticeAction,
    NoticeColour,
    NoticeRequest,
    OffenceCategory,
    PersonSubject,
    Prosecution,
    RecallReason,
)
from schemas.participants import CCC
from schemas.registry import MemberRegistry, Region, default_registry
from schemas.sealing import RandomBytes

__all__ = [
    "NoticeTraffic",
    "political_request",
    "red_notice",
    "red_notice_id",
    "regional_alert",
]

_FAMILY = ("DOE", "ROE", "MORENO", "OKAFOR", "NAKAMURA", "PETROV", "SILVA", "HADDAD", "KOWALSKI")
_GIVEN = ("John", "Ana", "Ivan", "Amara", "Kenji", "Lucía", "Omar", "Zofia", "Pierre")


def _person(rng: random.Random, nationality: str) -> PersonSubject:
    return PersonSubject(
        family_name=rng.choice(_FAMILY),
        forenames=rng.choice(_GIVEN),
        sex=rng.choice(("F", "M")),
        date_of_birth=f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-"
        f"{rng.randint(1, 28):02d}",
        nationalities=(nationality,),
        description="about 1.75 m, scar on the left hand",
        place="last seen near the central station",
        photo_ref=f"photo-{rng.randrange(10**8):08d}",
    )


def red_notice(requester: str, request_id: str, rng: random.Random) -> NoticeRequest:
    """A sound worldwide Red Notice request for murder (the review publishes it)."""
    return NoticeRequest(
        request_id=request_id,
        requesting_ncb=requester,
        colour=NoticeColour.RED,
        subject=_person(rng, requester),
        offence_category=OffenceCategory.MURDER,
        facts="Shot the victim during an armed robbery of a jewellery shop.",
        judicial_basis=Prosecution(
            warrant_reference=f"W-{requester}-{rng.randrange(10**6):06d}",
            issuing_authority="investigating judge",
            maximum_penalty_years=30,
        ),
    )


def red_notice_id(request: NoticeRequest) -> str:
    """The id the CCC gives the notice a request opens (``colour-request id``)."""
    return f"{request.colour.value}-{request.request_id}"


def regional_alert(
    requester: str, request_id: str, region: Region, rng: random.Random
) -> NoticeRequest:
    """A sound Yellow Notice (missing person) for one region only."""
    return NoticeRequest(
        request_id=request_id,
        requesting_ncb=requester,
        colour=NoticeColour.YELLOW,
        subject=_person(rng, requester),
        facts="Missing since leaving school; believed to have crossed the border by bus.",
        region=region,
    )


def political_request(requester: str, request_id: str, rng: random.Random) -> NoticeRequest:
    """A Red Notice request for treason: the review refuses it (Article 3)."""
    return red_notice(requester, request_id, rng).model_copy(
        update={
            "offence_category": OffenceCategory.TREASON,
            "facts": "Criticised the government in a speech at a rally.",
        }
    )


AdapterFor = Callable[[str], NcbAdapter]


@dataclass
class NoticeTraffic:
    """Seeded notice and diffusion events; keeps what it sent so it can recall or cancel."""

    rng: random.Random
    registry: MemberRegistry = field(default_factory=default_registry)
    political_share: float = 0.2
    returned_share: float = 0.1
    recall_share: float = 0.3
    diffusions: list[tuple[str, str]] = field(default_factory=list)  # (sender, message id)
    red_notices: list[tuple[str, str]] = field(default_factory=list)  # (requester, notice id)

    def step(
        self, adapter_for: AdapterFor, *, now: datetime, random_bytes: RandomBytes
    ) -> list[OutboundRecord]:
        """One event's records, for the inbound topic."""
        roll = self.rng.random()
        if roll < 0.5:
            return [self._request(adapter_for, now, random_bytes)]
        if roll < 0.8 or not (self.diffusions or self.red_notices):
            return [self._diffusion(adapter_for, now, random_bytes)]
        if self.diffusions and (roll < 0.95 or not self.red_notices):
            sender, diffusion_id = self.diffusions.pop(self.rng.randrange(len(self.diffusions)))
            if self.rng.random() >= self.recall_share:
                return []
            recall = DiffusionRecall(
                diffusion_id=diffusion_id,
                reason=RecallReason.SENDER_WITHDREW,
                text="sent in error",
            )
            body = DiffusionRecallBody(recall=recall)
            return [adapter_for(sender).compose([CCC], body, now=now, random_bytes=random_bytes)[1]]
        requester, notice_id = self.red_notices.pop(0)
        action = NoticeActionBody(
            notice_id=notice_id, action=NoticeAction.CANCEL, reason="person arrested"
        )
        return [
            adapter_for(requester).compose([CCC], action, now=now, random_bytes=random_bytes)[1]
        ]

    def opening(
        self, adapter_for: AdapterFor, *, now: datetime, random_bytes: RandomBytes
    ) -> list[OutboundRecord]:
        """A sound worldwide Red Notice request and a regional alert, to open a run with."""
        out = []
        for regional in (False, True):
            requester = self._member()
            request_id = str(uuid.UUID(bytes=random_bytes(16), version=4))
            if regional:
                region = self.registry.get(requester).region
                request = regional_alert(requester, request_id, region, self.rng)
            else:
                request = red_notice(requester, request_id, self.rng)
                self.red_notices.append((requester, red_notice_id(request)))
            body = NoticeRequestBody(request=request)
            out.append(
                adapter_for(requester).compose([CCC], body, now=now, random_bytes=random_bytes)[1]
            )
        return out

    def _member(self) -> str:
        return self.rng.choice(self.registry.codes())

    def _request(
        self, adapter_for: AdapterFor, now: datetime, random_bytes: RandomBytes
    ) -> OutboundRecord:
        requester = self._member()
        request_id = str(uuid.UUID(bytes=random_bytes(16), version=4))
        roll = self.rng.random()
        if roll < self.political_share:
            request = political_request(requester, request_id, self.rng)
        elif roll < self.political_share + self.returned_share:
            request = red_notice(requester, request_id, self.rng).model_copy(
                update={"judicial_basis": None}
            )
        elif roll < 0.7:
            request = red_notice(requester, request_id, self.rng)
            self.red_notices.append((requester, red_notice_id(request)))
        else:
            region = self.registry.get(requester).region
            request = regional_alert(requester, request_id, region, self.rng)
        body = NoticeRequestBody(request=request)
        return adapter_for(requester).compose([CCC], body, now=now, random_bytes=random_bytes)[1]

    def _diffusion(
        self, adapter_for: AdapterFor, now: datetime, random_bytes: RandomBytes
    ) -> OutboundRecord:
        sender = self._member()
        others = [c for c in self.registry.codes() if c != sender]
        recipients = sorted(self.rng.sample(others, 3))
        body = DiffusionBody(
            subject="Wanted: armed robbery suspect believed travelling",
            text="Suspect believed to travel on a forged passport; please check arrivals.",
            purpose="locate and report",
        )
        header, record = adapter_for(sender).compose(
            [*recipients, CCC], body, now=now, random_bytes=random_bytes
        )
        self.diffusions.append((sender, header.message_id))
        return record
