"""Which records an operator's replay selects: a filter model and a pure ``matches``.

Theory of operation: a record is selected when it passes every criterion that is set;
within one criterion, any listed value will do (``--sender FRA --sender DEU`` selects
both senders). Two kinds of criteria:

* *position* criteria read the Kafka record itself, so they apply to every record on the
  backbone: the record timestamp (``since`` inclusive, ``until`` exclusive, epoch ms) and
  the topic (shell-style patterns, ``i247.ncb.*.inbox``);
* *header* criteria (sender, recipient, message type, precedence, correlation id) read the
  cleartext routing header of a sealed envelope, parsed without any key
  (``schemas.sealing.parse_envelope``). Records that are not sealed envelopes (journal
  JSON on the control topic, heartbeats, leases) have no routing header, so a header
  criterion never matches them; select those by topic and time alone. A dead letter
  keeps the refused record's value, so it matches when that value is still a well-formed
  envelope. A recipient criterion matches the header's recipients literally: ``FRA``
  does not match a message addressed to ``ccc``.

Worked example::

    >>> flt = ReplayFilter(senders=frozenset({"FRA"}), topics=frozenset({"i247.ncb.*.inbox"}))
    >>> flt.needs_header, flt.selects_topic("i247.ncb.DEU.inbox"), flt.selects_topic("i247.inbound")
    (True, True, False)

Times on the command line are ISO-8601 (``2026-11-23T12:00:00Z``; no offset means UTC)
or relative to now (``15m``, ``2h``, ``90s``, ``1d``): ``parse_moment`` turns them into
an aware UTC datetime, with ``now`` passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, model_validator

from brokers.records import ReceivedRecord
from schemas.errors import RejectedMessage
from schemas.header import MessageType, Precedence, RoutingHeader
from schemas.sealing import SealedMessage, parse_envelope

__all__ = [
    "READ_LIMIT_BYTES",
    "ReplayFilter",
    "ReplayFilterError",
    "envelope_of",
    "epoch_ms",
    "matches",
    "matches_header",
    "matches_position",
    "parse_moment",
]

READ_LIMIT_BYTES = 64 * 1_048_576  # the largest I247_MAX_MESSAGE_BYTES: replay reads, not polices

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class ReplayFilterError(ValueError):
    """A filter value an operator typed cannot be used; the message says what is accepted."""


def parse_moment(text: str, *, now: datetime) -> datetime:
    """``15m`` (before ``now``) or an ISO-8601 instant, as an aware UTC datetime.

    >>> parse_moment("15m", now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC)).isoformat()
    '2026-11-23T11:45:00+00:00'
    """
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        return (now - timedelta(seconds=seconds)).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ReplayFilterError(
            f"{text!r} is not a time: use ISO-8601 UTC (2026-11-23T12:00:00Z) "
            "or a duration before now (30s, 15m, 2h, 1d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as Kafka record timestamps count."""
    return int(moment.timestamp() * 1000)


class ReplayFilter(BaseModel):
    """What to select; every criterion left empty selects everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since_ms: int | None = None
    until_ms: int | None = None
    topics: frozenset[str] = frozenset()
    senders: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    message_types: frozenset[MessageType] = frozenset()
    precedences: frozenset[Precedence] = frozenset()
    correlation_ids: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _ordered_window(self) -> ReplayFilter:
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.until_ms <= self.since_ms
        ):
            raise ValueError(f"until ({self.until_ms} ms) must be after since ({self.since_ms} ms)")
        return self

    @property
    def needs_header(self) -> bool:
        """True when some criterion reads the routing header (so non-envelopes cannot match)."""
        return bool(
            self.senders
            or self.recipients
            or self.message_types
            or self.precedences
            or self.correlation_ids
        )

    def selects_topic(self, topic: str) -> bool:
        """Whether ``topic`` is one the filter reads (every topic when none is named)."""
        return not self.topics or any(fnmatchcase(topic, pattern) for pattern in self.topics)


def envelope_of(
    record: ReceivedRecord, *, max_bytes: int = READ_LIMIT_BYTES
) -> SealedMessage | None:
    """The record's sealed envelope, parsed without a key; None if it is not one."""
    try:
        return parse_envelope(record.value, max_bytes=max_bytes)
    except RejectedMessage:
        return None


def matches_position(record: ReceivedRecord, flt: ReplayFilter) -> bool:
    """The criteria every record has: its timestamp and its topic."""
    if flt.since_ms is not None and record.timestamp_ms < flt.since_ms:
        return False
    if flt.until_ms is not None and record.timestamp_ms >= flt.until_ms:
        return False
    return flt.selects_topic(record.topic)


def matches_header(header: RoutingHeader | None, flt: ReplayFilter) -> bool:
    """The routing-header criteria; a record without a header matches only if none is set."""
    if header is None:
        return not flt.needs_header
    return (
        (not flt.senders or header.sender in flt.senders)
        and (not flt.recipients or not flt.recipients.isdisjoint(header.recipients))
        and (not flt.message_types or header.message_type in flt.message_types)
        and (not flt.precedences or header.precedence in flt.precedences)
        and (not flt.correlation_ids or header.correlation_id in flt.correlation_ids)
    )


def matches(record: ReceivedRecord, flt: ReplayFilter) -> bool:
    """Whether ``flt`` selects ``record``; parses the envelope only when a header criterion asks."""
    if not matches_position(record, flt):
        return False
    if not flt.needs_header:
        return True
    sealed = envelope_of(record)
    return matches_header(sealed.header if sealed else None, flt)
