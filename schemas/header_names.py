"""The names of every Kafka record header the backbone writes, spelled once.

Writers and readers (``brokers.record_headers``, ``schemas.leases``) and the published
contract (``brokers.contract``, ``docs/asyncapi.yaml``) take the names from here, so the
document cannot drift from the records. The ``i247`` in these names is fixed: it does not
follow ``I247_TOPIC_PREFIX``, which renames topics only.
"""

from __future__ import annotations

__all__ = [
    "BACKBONE_PREFIX",
    "CE_ID",
    "CE_SOURCE",
    "CE_SPECVERSION",
    "CE_TIME",
    "CE_TYPE",
    "CLOUDEVENT_HEADERS",
    "CONTENT_TYPE",
    "DLQ_FIELDS",
    "DLQ_PREFIX",
    "FENCE_HEADERS",
    "FORWARDING_HEADERS",
    "HUB",
    "LEASE_EPOCH",
    "LEASE_OFFSET",
    "LEASE_PARTITION",
    "LEASE_UNIT",
    "NOTICE_VERSION",
    "ORIGIN",
    "PRECEDENCE",
    "REDRIVEN_FROM",
    "REPLAY_FIELDS",
    "REPLAY_PREFIX",
    "SEALED_KEY",
    "SEALED_TOPIC",
    "TRACEPARENT",
]

# CloudEvents 1.0, Kafka protocol binding, binary mode; W3C Trace Context
CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
TRACEPARENT = "traceparent"
CLOUDEVENT_HEADERS = (CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CONTENT_TYPE)

# what the CCC adds to a record it forwards (docs/wire-format.md §7); intake drops any
# header with the backbone's prefix that a sender wrote, so none can be forged
BACKBONE_PREFIX = "i247-"
SEALED_TOPIC = "i247-sealed-topic"
SEALED_KEY = "i247-sealed-key"
PRECEDENCE = "i247-precedence"
HUB = "i247-hub"
ORIGIN = "i247-origin"
FORWARDING_HEADERS = (SEALED_TOPIC, SEALED_KEY, PRECEDENCE, HUB, ORIGIN)
NOTICE_VERSION = "i247-notice-version"  # on the notices topic: the notice's version

# the fence tag of every output of a leased unit (schemas.leases)
LEASE_UNIT = "i247-lease-unit"
LEASE_EPOCH = "i247-lease-epoch"
LEASE_PARTITION = "i247-lease-partition"
LEASE_OFFSET = "i247-lease-offset"
FENCE_HEADERS = (LEASE_UNIT, LEASE_EPOCH, LEASE_PARTITION, LEASE_OFFSET)

# dead letters (in the manner of Kafka Connect's __connect.errors.*) and replay marks
DLQ_PREFIX = "i247.dlq."
DLQ_FIELDS = ("reason", "detail", "topic", "partition", "offset", "timestamp", "processor")
REDRIVEN_FROM = "i247.redriven-from"  # on a re-driven dead letter: its dead-letter offset
REPLAY_PREFIX = "i247.replay."
REPLAY_FIELDS = ("name", "topic", "partition", "offset", "timestamp")
