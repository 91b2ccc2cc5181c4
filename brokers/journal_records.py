"""A typed journal event (``schemas.journal``) as its record on ``i247.control``.

One writer for every producer of the journal (the hubs, ``streams.desks.hub_state``; the command
line, ``agents.ops.dlq`` and ``agents.ops.key_lifecycle``): the value is the event's JSON, the
headers binary-mode CloudEvents (``ce_source`` ``/i247/<hub>``, ``ce_type``
``int.interpol.i247.control.<event>.v1``, ``ce_time`` the event's ``time``,
``content-type`` ``application/json``), as docs/wire-format.md §13 describes.
"""

from __future__ import annotations

from brokers.record_headers import cloudevent_headers
from brokers.records import OutboundRecord
from schemas.control_events import control_ce_type
from schemas.journal import JournalEventModel

__all__ = ["journal_record_of"]


def journal_record_of(
    event: JournalEventModel, *, topic: str, key: str, event_id: str
) -> OutboundRecord:
    """``event`` as the record written on ``topic`` (the control topic) under ``key``."""
    headers = cloudevent_headers(
        event_id,
        f"/i247/{event.hub}",
        control_ce_type(event.event_name),
        event.time,
        content_type="application/json",
    )
    return OutboundRecord(topic, key.encode(), event.to_json_bytes(), tuple(headers))
