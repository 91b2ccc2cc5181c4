"""The published contract: ``docs/asyncapi.yaml`` (AsyncAPI 3.0), generated from the code.

Every topic of ``schemas.topics.TopicCatalog`` becomes a channel (inboxes and replays
parameterised), with its record key, its headers (names from ``schemas.header_names``)
and its payload as JSON Schema from the pydantic models (``model_json_schema``). The
control journal's events are described from ``schemas.control_events``, which lists them
as the hubs write them today. ``i247 contract --check`` and ``tests/unit/test_contract.py``
fail when the committed file differs from what this module generates.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from brokers.contract_headers import (
    CONTROL_HEADERS,
    DEAD_LETTER_HEADERS,
    ENVELOPE_HEADERS,
    FENCE,
    FORWARDING,
    NOTICE_HEADERS,
    RECEIPT_HEADERS,
    REDRIVE,
    REPLAY_HEADERS,
    headers_schema,
)
from brokers.record_headers import CONTENT_TYPE, RECEIPTS_CONTENT_TYPE
from brokers.yaml_out import dump_yaml
from schemas.bodies import BODY_ADAPTER
from schemas.control_events import COMMON_FIELDS, CONTROL_EVENTS, ControlEventSpec
from schemas.header import Precedence, RoutingHeader
from schemas.heartbeat import Heartbeat
from schemas.key_directory import DirectoryEntry
from schemas.leases import LeaseRecord
from schemas.participants import HUB_SITES
from schemas.receipts import ReceiptBatch
from schemas.registry import default_registry
from schemas.sealing import _EnvelopeWire
from schemas.teams import Deployment
from schemas.topics import TopicCatalog

__all__ = ["ASYNCAPI_PATH", "asyncapi_document", "asyncapi_yaml"]

ASYNCAPI_PATH = "docs/asyncapi.yaml"
_REF = "#/components/schemas/{model}"
_KAFKA = "0.5.0"  # Kafka bindings version for AsyncAPI 3.0
_PROSE = "docs/wire-format.md"
Schema = dict[str, Any]


def _strip(node: Any) -> Any:
    """JSON Schema draft 2020-12 as pydantic writes it, made AsyncAPI-schema-safe: the
    OpenAPI-style ``discriminator`` object is dropped (each branch's ``const`` type already
    tells them apart)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _schemas() -> dict[str, Schema]:
    """The payload models and everything they refer to, by name."""
    roots: dict[str, TypeAdapter[Any] | type[BaseModel]] = {
        "Envelope": _EnvelopeWire,
        "RoutingHeader": RoutingHeader,
        "Body": BODY_ADAPTER,
        "Heartbeat": Heartbeat,
        "LeaseRecord": LeaseRecord,
        "Deployment": Deployment,
        "ReceiptBatch": ReceiptBatch,
        "DirectoryEntry": DirectoryEntry,
    }
    found: dict[str, Schema] = {}
    for name, root in roots.items():
        if isinstance(root, TypeAdapter):
            schema = root.json_schema(ref_template=_REF)
        else:
            schema = root.model_json_schema(ref_template=_REF)
        for sub, definition in schema.pop("$defs", {}).items():
            if found.setdefault(sub, definition) != definition:
                raise AssertionError(f"two different schemas are both named {sub!r}")
        found[name] = schema
    found["Envelope"]["title"] = "Envelope"
    found["Envelope"]["description"] = (
        "The sealed envelope (docs/wire-format.md §2): the record value, UTF-8 JSON."
    )
    found["ReceiptBatch"]["description"] = (
        "Delivery receipts from one hub for one sender, in clear, signed once by the hub "
        "over the inbox topic, the record key and the batch (docs/wire-format.md §10)."
    )
    found["Body"]["description"] = (
        "The plaintext sealed inside an envelope's ciphertext (§9); its type equals the "
        "routing header's message_type. Never on the wire in clear."
    )
    found["DirectoryEntry"]["description"] = (
        "One participant's whole key set (active, retiring until verify_until, revoked), "
        "signed by the CCC's directory authority (docs/wire-format.md, key directory)."
    )
    found.update(_header_schemas())
    return {name: _strip(found[name]) for name in sorted(found)}


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(model=name)}


def _message(
    name: str, title: str, summary: str, key: str, headers: Schema, payload: Schema, **extra: Any
) -> Schema:
    message: Schema = {
        "name": name,
        "title": title,
        "summary": summary,
        "headers": headers,
        "payload": payload,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": _KAFKA,
            }
        },
    }
    return {**message, **extra}


def _sealed(name: str, title: str, summary: str, key: str, headers: Schema) -> Schema:
    return _message(
        name,
        title,
        summary,
        key,
        headers,
        _ref("Envelope"),
        contentType=CONTENT_TYPE,
        **{"x-sealed-body": _ref("Body")},
    )


def _control_payload(spec: ControlEventSpec) -> Schema:
    properties: dict[str, Schema] = {
        **COMMON_FIELDS,
        "event": {"const": spec.name},
    }
    for field, schema in spec.fields.items():
        properties[field] = _ref("Deployment") if schema.get("$ref") == "Deployment" else schema
    required = [*COMMON_FIELDS, *(f for f in spec.fields if f not in spec.optional)]
    return {
        "type": "object",
        "description": f"{spec.summary} Key: {spec.key}.",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }


def _header_schemas() -> dict[str, Schema]:
    """Each message kind's headers, as one named schema the messages refer to."""
    return {
        "SealedHeaders": headers_schema(ENVELOPE_HEADERS + REDRIVE, optional=REDRIVE),
        "ForwardedHeaders": headers_schema(
            ENVELOPE_HEADERS + REDRIVE + FORWARDING + FENCE, optional=REDRIVE
        ),
        "DeliveredHeaders": headers_schema(
            ENVELOPE_HEADERS + FORWARDING + FENCE, optional=FORWARDING[-1:]
        ),
        "ReceiptHeaders": headers_schema(RECEIPT_HEADERS + FENCE),
        "NoticeHeaders": headers_schema(
            NOTICE_HEADERS + FENCE + ENVELOPE_HEADERS, optional=ENVELOPE_HEADERS
        ),
        "NoHeaders": {"type": "object", "description": "no headers", "maxProperties": 0},
        "DeadLetterHeaders": headers_schema(
            DEAD_LETTER_HEADERS + FENCE, optional=FENCE, open_ended=True
        ),
        "ReplayHeaders": headers_schema(REPLAY_HEADERS, open_ended=True),
        "ControlHeaders": headers_schema(CONTROL_HEADERS + FENCE, optional=FENCE),
    }


def _messages() -> dict[str, Schema]:
    messages = {
        "sealed": _sealed(
            "sealed",
            "A sealed message, as its sender publishes it",
            "An NCB's or team's message to the CCC and its recipients (§1-§7).",
            "the sender's participant id (FRA, team:...)",
            _ref("SealedHeaders"),
        ),
        "forwarded": _sealed(
            "forwarded",
            "A message the CCC admitted, on a hub's lane",
            "The sender's bytes unchanged, with forwarding headers and the fence tag (§7, §11).",
            "the message id",
            _ref("ForwardedHeaders"),
        ),
        "delivered": _sealed(
            "delivered",
            "A message in a recipient's inbox",
            "Forwarded bytes, or a message a hub sent (sealed for the inbound topic under "
            "the message id; no i247-origin), with the fence tag of the term that wrote it "
            "(§7, §11). Delivery receipts come as receipt batches (§10).",
            "the message id",
            _ref("DeliveredHeaders"),
        ),
        "receipts": _message(
            "receipts",
            "A hub's signed receipt batch, in the sender's inbox",
            "The deliveries a hub made of one sender's messages (message id, recipient, "
            "time), in clear, signed once by the hub's Ed25519 key (§10).",
            "the batch id",
            _ref("ReceiptHeaders"),
            _ref("ReceiptBatch"),
            contentType=RECEIPTS_CONTENT_TYPE,
        ),
        "notice": _sealed(
            "notice",
            "A notice's latest state",
            "A notice body sealed by a hub for the notices topic and the notice id (§12).",
            "the notice id",
            _ref("NoticeHeaders"),
        ),
        "heartbeat": _message(
            "heartbeat",
            "A hub's heartbeat",
            "About once a second per hub; the latest per key is its state (§12).",
            "the hub's site (lyon)",
            _ref("NoHeaders"),
            _ref("Heartbeat"),
            contentType="application/json",
        ),
        "lease": _message(
            "lease",
            "A lease event",
            "Claim, renew or release of a unit; every reader folds them in log order (§11).",
            "the unit: intake, or a lane topic's name",
            _ref("NoHeaders"),
            _ref("LeaseRecord"),
            contentType="application/json",
        ),
        "key-entry": _message(
            "key-entry",
            "A participant's key set",
            "Published by `i247 keys rotate|revoke`; hubs and bureaus fold the latest per "
            "participant into their key directory (docs/wire-format.md, key directory).",
            "the participant id (FRA, hub:lyon, team:...)",
            _ref("NoHeaders"),
            _ref("DirectoryEntry"),
            contentType="application/json",
        ),
        "dead-letter": _message(
            "dead-letter",
            "A refused record",
            "The refused record's key, value and headers untouched, plus i247.dlq.* (§14) "
            "and the fence tag of the refusing term.",
            "the refused record's key, unchanged",
            _ref("DeadLetterHeaders"),
            {"description": "the refused record's value, byte for byte (often an envelope)"},
        ),
        "replayed": _message(
            "replayed",
            "A record re-published by an operator's replay",
            "The original record's key, value and headers, plus i247.replay.* marks.",
            "the original record's key, unchanged",
            _ref("ReplayHeaders"),
            {"description": "the original record's value, byte for byte"},
        ),
    }
    for spec in CONTROL_EVENTS.values():
        messages[f"control-{spec.name}"] = _message(
            f"control-{spec.name}",
            f"Journal event {spec.name}",
            spec.summary,
            spec.key,
            _ref("ControlHeaders"),  # desks' events carry the fence tag, the hub's own do not
            _control_payload(spec),
            contentType="application/json",
        )
    return messages


def _channel(address: str, description: str, messages: list[str], **kafka: Any) -> Schema:
    """A channel; a fixed topic's carries its Kafka binding (``kafka``), a parameterised
    one's (an address with ``{...}``) none."""
    channel: Schema = {
        "address": address,
        "description": description,
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
    }
    if "{" not in address:
        channel["bindings"] = {"kafka": {"topic": address, **kafka, "bindingVersion": _KAFKA}}
    return channel


def _channels(topics: TopicCatalog) -> dict[str, Schema]:
    compacted = {"topicConfiguration": {"cleanup.policy": ["compact"]}}
    ncbs = sorted(m.iso3 for m in default_registry().members)
    channels = {
        "inbound": _channel(
            topics.inbound,
            "Every sealed message from NCBs and teams; intake reads it.",
            ["sealed"],
            partitions=topics.inbound_partitions,
        ),
    }
    for site in HUB_SITES:
        for precedence in Precedence:
            channels[f"lane-{site}-{precedence.lane}"] = _channel(
                topics.lane(site, precedence),
                f"Admitted traffic assessed {precedence.value}, routed to hub {site}.",
                ["forwarded"],
                partitions=1,
            )
    channels["ncb-inbox"] = {
        **_channel(
            topics.inbox("FRA").replace(".FRA.", ".{ncb}."),
            "One NCB's inbox: deliveries to it, what the CCC sealed for it, and the "
            "receipts for what it sent.",
            ["delivered", "receipts"],
        ),
        "parameters": {"ncb": {"description": "the NCB's ISO 3166-1 alpha-3 code", "enum": ncbs}},
    }
    channels["team-inbox"] = {
        **_channel(
            topics.inbox("team:x0").replace(".x0.", ".{team}."),
            "One deployed team's inbox (created when the team is approved).",
            ["delivered", "receipts"],
        ),
        "parameters": {
            "team": {
                "description": "the team id without its `team:` prefix",
                "examples": ["dvi-fra-nice-20260715", "imest-summer-games"],
            }
        },
    }
    channels["notices"] = _channel(
        topics.notices, "The latest state of every notice.", ["notice"], **compacted
    )
    channels["heartbeat"] = _channel(
        topics.heartbeat, "Each hub's liveness and load.", ["heartbeat"], **compacted
    )
    channels["leases"] = _channel(
        topics.leases, "The lease journal: who owns intake and each lane.", ["lease"], partitions=1
    )
    channels["control"] = _channel(
        topics.control,
        "The operations journal: leases, liveness, desks' decisions, teams.",
        [f"control-{name}" for name in CONTROL_EVENTS],
    )
    channels["keys"] = _channel(
        topics.keys,
        "The key directory: each participant's keys, rotated and revoked at run time.",
        ["key-entry"],
        **compacted,
    )
    channels["deadletter"] = _channel(
        topics.deadletter, "Every refused record, with the reason in headers.", ["dead-letter"]
    )
    channels["replay"] = {
        **_channel(
            f"{topics.replay_prefix}{{name}}",
            "An operator's replay re-publishes recorded traffic here; no processor reads it.",
            ["replayed"],
        ),
        "parameters": {"name": {"description": "the replay's name", "examples": ["r1"]}},
    }
    return channels


_OPERATIONS = (
    ("sendSealed", "send", "inbound", "An NCB or team publishes a sealed message."),
    ("admit", "receive", "inbound", "The hub holding intake validates and routes."),
    ("deliverToNcb", "send", "ncb-inbox", "A lane's hub delivers to an NCB; receipts its sends."),
    ("readNcbInbox", "receive", "ncb-inbox", "An NCB reads, fences, deduplicates, opens."),
    ("deliverToTeam", "send", "team-inbox", "A lane's hub delivers to a team; receipts its sends."),
    ("readTeamInbox", "receive", "team-inbox", "A team reads its inbox."),
    ("publishNotice", "send", "notices", "The notice desk writes a notice's latest state."),
    ("beat", "send", "heartbeat", "Every hub beats about once a second."),
    ("journalLease", "send", "leases", "Hubs claim, renew and release units."),
    ("foldLeases", "receive", "leases", "Hubs and inbox readers fold the lease journal."),
    ("journal", "send", "control", "Hubs journal operations events."),
    ("readJournal", "receive", "control", "Hubs, tools and dashboards read the journal."),
    ("publishKeys", "send", "keys", "`i247 keys rotate|revoke` publish a key set."),
    ("foldKeys", "receive", "keys", "Hubs and bureaus fold the key directory."),
    ("deadLetter", "send", "deadletter", "Intake dead-letters what it refuses."),
    ("replay", "send", "replay", "`i247 replay --publish` re-publishes recorded traffic."),
)


def asyncapi_document(topics: TopicCatalog | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the backbone, for ``topics`` (default prefix ``i247``)."""
    topics = topics or TopicCatalog()
    channels = _channels(topics)
    operations: dict[str, Schema] = {}
    for op_id, action, channel, summary in _OPERATIONS:
        operations[op_id] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
        }
    for site in HUB_SITES:
        for precedence in Precedence:
            channel = f"lane-{site}-{precedence.lane}"
            for action, verb in (("send", "route"), ("receive", "work")):
                operations[f"{verb}-{site}-{precedence.lane}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel}"},
                    "summary": "The hub holding intake routes here."
                    if action == "send"
                    else f"The hub holding lease {topics.lane(site, precedence)} delivers.",
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "I-24/7 backbone",
            "version": "1",
            "description": (
                f"Generated by `i247 contract` from the code (brokers/contract.py); do not "
                f"edit. Topic names use the default prefix `i247` (I247_TOPIC_PREFIX renames "
                f"topics, never headers). Header values are UTF-8 bytes. Normative prose: "
                f"{_PROSE}."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": _messages(), "schemas": _schemas()},
    }


def asyncapi_yaml(topics: TopicCatalog | None = None) -> str:
    """``docs/asyncapi.yaml`` as text."""
    return "# Generated by `i247 contract`; do not edit.\n" + dump_yaml(asyncapi_document(topics))
