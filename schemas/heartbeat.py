"""The heartbeat record: what a hub says about itself, about once a second.

It lives here, beside the other record formats, so the published contract
(``docs/asyncapi.yaml``) and any reader can use it without the CCC's code; the liveness
decisions that fold it are in ``streams.core.liveness``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.header import UtcTimestamp

__all__ = ["Heartbeat"]


class Heartbeat(BaseModel):
    """What a hub says about itself on ``i247.hub.heartbeat`` (key: its site)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    site: str
    sequence: int = Field(ge=0)
    sent_at: UtcTimestamp
    lanes: tuple[str, ...] = ()
    backlog: int | None = Field(default=None, ge=0)  # records of held units not yet done
    leaving: bool = False  # a graceful stop: dead at once, no need to wait for the timeout
    incarnation: str = ""  # new at each process start, so a restarted hub's count restarts
