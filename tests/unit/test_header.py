"""Header, bodies and participant ids: strict contracts (wire format §3, §5, §9).

Headers are checked as they arrive, from JSON (which is how ``parse_envelope`` reads them),
and, where Python values differ from JSON ones, as built in Python.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.bodies import (
    BODY_ADAPTER,
    AcknowledgementBody,
    DbCheckQueryBody,
    DbCheckResultBody,
    DeliveryReceiptBody,
    DeploymentClosedBody,
    DiffusionBody,
    DiffusionRecallBody,
    MessageBody,
    NoticeActionBody,
    NoticeBody,
    NoticeDecisionBody,
    NoticeRequestBody,
    RenewalPromptBody,
    TeamConversionBody,
    TeamDecisionBody,
    TeamReportBody,
    TeamRequestBody,
    UrgentRequestBody,
)
from schemas.checks import (
    CheckAnswer,
    CheckRequest,
    ConsolidatedAnswer,
    HitConfirmation,
    HitConfirmationRequest,
    MultiCountryQuery,
    MultiCountryReply,
    StolenVehicleReport,
    StolenVehicleUpdate,
)
from schemas.header import (
    MAX_RECIPIENTS,
    HeaderFlag,
    Language,
    MessageType,
    Precedence,
    RoutingHeader,
    Suite,
    format_timestamp,
)
from schemas.markings import HandlingCode, Tlp
from schemas.participants import ParticipantKind, hub_id, kind_of, site_of

MESSAGE_ID = "6f1d2c1e-24f7-4c0c-9a1e-1247a5e5c0de"
WIRE_HEADER: dict[str, Any] = {
    "schema_version": 1,
    "message_id": MESSAGE_ID,
    "sender": "FRA",
    "recipients": ["DEU", "ccc", "team:irt-2026-001"],
    "message_type": "message",
    "precedence": "PRIORITY",
    "created_at": "2026-11-23T06:03:00.202457Z",
    "language": "fr",
    "case_id": None,
    "correlation_id": None,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "handling": "H0",
    "tlp": "TLP:AMBER",
    "evaluation": "B2",
    "flags": [],
    "suite": Suite.X25519.value,
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def ncb_codes(count: int) -> list[str]:
    """``count`` distinct, well-formed NCB ids: AAA, AAB, ..."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [a + b + c for a in letters for b in letters for c in letters][:count]


def from_wire(**changes: Any) -> RoutingHeader:
    return RoutingHeader.model_validate_json(json.dumps({**WIRE_HEADER, **changes}))


def python_header(**overrides: Any) -> RoutingHeader:
    values: dict[str, Any] = {
        "message_id": MESSAGE_ID,
        "sender": "FRA",
        "recipients": ["DEU"],
        "message_type": MessageType.MESSAGE,
        "precedence": Precedence.ROUTINE,
        "created_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "language": Language.EN,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    values.update(overrides)
    return RoutingHeader(**values)


# Participant ids (§5)


@pytest.mark.parametrize(
    ("participant", "kind"),
    [
        ("FRA", ParticipantKind.NCB),
        ("hub:lyon", ParticipantKind.HUB),
        ("hub:buenos-aires", ParticipantKind.HUB),
        ("hub:singapore", ParticipantKind.HUB),
        ("team:irt-2026-001", ParticipantKind.TEAM),
        ("team:x9", ParticipantKind.TEAM),
        ("auditor", ParticipantKind.AUDITOR),
    ],
)
def test_a_well_formed_participant_id_names_its_kind(
    participant: str, kind: ParticipantKind
) -> None:
    assert kind_of(participant) is kind


@pytest.mark.parametrize(
    "bad",
    [
        "fra",
        "FR",
        "FRAN",
        "XX",
        " FRA",
        "hub:paris",
        "hub:",
        "HUB:lyon",
        "team:",
        "team:a",
        "team:-x",
        "team:IRT",
        "team:" + "a" * 49,
        "Auditor",
        "ccc",
        "",
    ],
)
def test_a_malformed_participant_id_is_refused_naming_the_accepted_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO alpha-3 code"):
        kind_of(bad)


def test_a_hub_id_is_its_site_behind_hub_colon() -> None:
    assert hub_id("buenos-aires") == "hub:buenos-aires"
    assert site_of("hub:buenos-aires") == "buenos-aires"


@pytest.mark.parametrize(("call", "argument"), [(hub_id, "paris"), (site_of, "FRA")])
def test_a_hub_id_is_only_made_from_or_read_back_to_a_known_site(call: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=r"site|not a hub"):
        call(argument)


# The routing header (§3)


def test_a_documented_wire_header_is_accepted_as_is() -> None:
    header = from_wire()
    assert header.recipients == ["DEU", "ccc", "team:irt-2026-001"]
    assert header.created_at == datetime(2026, 11, 23, 6, 3, 0, 202457, tzinfo=UTC)
    assert header.model_dump(mode="json") == WIRE_HEADER


def test_optional_fields_take_their_documented_defaults() -> None:
    header = python_header()
    assert (header.case_id, header.correlation_id) == (None, None)
    assert header.handling is HandlingCode.H0
    assert header.tlp is Tlp.AMBER
    assert header.evaluation == "B2"
    assert header.flags == []
    assert header.suite is Suite.X25519


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema_version", 2),
        ("schema_version", "1"),
        ("message_id", MESSAGE_ID.upper()),
        ("message_id", MESSAGE_ID.replace("-", "")),
        ("message_id", "{" + MESSAGE_ID + "}"),
        ("sender", "fra"),
        ("sender", "ccc"),
        ("sender", "hub:paris"),
        ("recipients", []),
        ("recipients", ["DEU", "ITA", "DEU"]),
        ("recipients", ["auditor"]),
        ("recipients", ["DEU", "auditor"]),
        ("recipients", ["deu"]),
        ("recipients", ncb_codes(MAX_RECIPIENTS + 1)),
        ("recipients", "DEU"),
        ("message_type", "gossip"),
        ("precedence", "flash"),
        ("created_at", "2026-11-23T06:03:00.202457"),  # no offset: naive
        ("created_at", "yesterday"),
        ("created_at", 1795413780),
        ("language", "de"),
        ("case_id", ""),
        ("case_id", "x" * 129),
        ("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736"),
        ("trace_id", "4bf92f35"),
        ("handling", "H4"),
        ("tlp", "RED"),
        ("evaluation", "D5"),
        ("evaluation", "b2"),
        ("flags", ["armed-and-dangerous"]),
        ("suite", "DHKEM-P256-HKDF-SHA256/HKDF-SHA256/AES-128-GCM"),
        ("subject", "secret in clear"),  # an unknown field
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_a_header_breaking_its_contract_is_refused_naming_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        from_wire(**{field: value})
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


@pytest.mark.parametrize(
    "overrides",
    [
        {"created_at": datetime(2026, 11, 23, 12, 0)},
        {"message_id": MESSAGE_ID.upper()},
        {"recipients": ["DEU", "DEU"]},
        {"recipients": ["auditor"]},
        {"recipients": ncb_codes(MAX_RECIPIENTS + 1)},
        {"subject": "secret in clear"},
        {"precedence": "ROUTINE"},  # strict: Python code passes the enum, not its value
    ],
    ids=["naive", "uppercase-uuid", "repeat", "auditor", "257", "unknown-field", "not-enum"],
)
def test_a_header_built_in_python_is_held_to_the_same_contract(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        python_header(**overrides)


@pytest.mark.parametrize(
    "recipients",
    [
        ["ccc"],
        ["DEU", "ccc"],
        ["team:irt-2026-001"],
        ["FRA"],  # a sender may copy itself
        ncb_codes(MAX_RECIPIENTS),
    ],
    ids=["ccc", "ncb-and-ccc", "team", "sender-itself", "256"],
)
def test_recipients_may_be_ncbs_teams_or_ccc_up_to_256(recipients: list[str]) -> None:
    assert from_wire(recipients=recipients).recipients == recipients


def test_recipients_keep_the_order_the_sender_gave() -> None:
    assert from_wire(recipients=["ITA", "DEU"]).recipients == ["ITA", "DEU"]


@pytest.mark.parametrize(
    ("moment", "wire"),
    [
        (datetime(2026, 11, 23, 6, 3, 0, 202457, tzinfo=UTC), "2026-11-23T06:03:00.202457Z"),
        (datetime(2026, 11, 23, 6, 3, tzinfo=UTC), "2026-11-23T06:03:00.000000Z"),
        (
            datetime(2026, 11, 23, 8, 3, 0, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-23T06:03:00.000005Z",
        ),
        (
            datetime(2026, 11, 22, 23, 0, tzinfo=timezone(timedelta(hours=-7))),
            "2026-11-23T06:00:00.000000Z",
        ),
    ],
    ids=["utc", "whole-second", "east-of-utc", "west-of-utc-next-day"],
)
def test_created_at_has_one_wire_form_in_utc_with_microseconds(moment: datetime, wire: str) -> None:
    header = python_header(created_at=moment)
    serialised = header.model_dump(mode="json")["created_at"]
    assert serialised == wire == format_timestamp(moment)
    assert TIMESTAMP.match(serialised)
    assert header.created_at.tzinfo is UTC


def test_format_timestamp_refuses_a_naive_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 23, 12, 0))


def test_a_header_survives_a_trip_through_its_json() -> None:
    header = python_header(
        recipients=["DEU", "ccc"],
        case_id="FRA-2026-0042",
        flags=[HeaderFlag.THREAT_TO_LIFE],
        suite=Suite.MLKEM768_X25519,
    )
    assert RoutingHeader.model_validate_json(header.model_dump_json()) == header


def test_a_header_cannot_be_changed_once_made() -> None:
    header = python_header()
    with pytest.raises(ValidationError):
        header.precedence = Precedence.FLASH  # type: ignore[misc]


# Bodies (§9)


_CAR = {
    "vin": "1M8GDM9AXKP042788",
    "plate": "AB-123-CD",
    "registration_country": "FRA",
    "make": "Renault",
    "model": "Clio",
    "colour": "grey",
    "reported_on": "2026-11-22",
    "reporting_ncb": "FRA",
}

BODY_EXAMPLES: dict[MessageType, tuple[type[BaseModel], dict[str, Any]]] = {
    MessageType.MESSAGE: (MessageBody, {"subject": "s", "text": "t"}),
    MessageType.DIFFUSION: (DiffusionBody, {"subject": "s", "text": "t", "purpose": "locate"}),
    MessageType.URGENT_REQUEST: (
        UrgentRequestBody,
        {"subject": "s", "situation": "flood", "text": "t"},
    ),
    MessageType.DB_CHECK_QUERY: (
        DbCheckQueryBody,
        {"items": [{"database": "SLTD", "key": "X1234567", "country": "FRA"}]},
    ),
    MessageType.DB_CHECK_RESULT: (DbCheckResultBody, {"query_id": MESSAGE_ID, "outcomes": []}),
    MessageType.NOTICE_REQUEST: (
        NoticeRequestBody,
        {
            "request": {
                "request_id": MESSAGE_ID,
                "requesting_ncb": "FRA",
                "colour": "red",
                "subject": {"kind": "person", "family_name": "N", "nationalities": ["FRA"]},
                "offence_category": "fraud",
                "facts": "f",
                "judicial_basis": {
                    "basis": "prosecution",
                    "warrant_reference": "W-1",
                    "issuing_authority": "judge",
                    "maximum_penalty_years": 5,
                },
            }
        },
    ),
    MessageType.NOTICE_DECISION: (
        NoticeDecisionBody,
        {
            "outcome": {
                "request_id": MESSAGE_ID,
                "decision": "refused",
                "reasons": [{"code": "duplicate", "text": "t"}],
            },
            "notice_id": None,
        },
    ),
    MessageType.NOTICE: (
        NoticeBody,
        {
            "notice": {
                "notice_id": "red-2026-000001",
                "request_id": MESSAGE_ID,
                "colour": "yellow",
                "state": "published",
                "requester": "FRA",
                "subject": {"kind": "person", "family_name": "N"},
                "facts": "f",
                "region": "Europe",
                "version": 2,
                "published_at": "2026-11-23T06:03:00.202457Z",
                "expires_at": "2031-11-23T06:03:00.202457Z",
            }
        },
    ),
    MessageType.DIFFUSION_RECALL: (
        DiffusionRecallBody,
        {"recall": {"diffusion_id": MESSAGE_ID, "reason": "compliance-finding"}},
    ),
    MessageType.NOTICE_ACTION: (
        NoticeActionBody,
        {"notice_id": "red-2026-000001", "action": "suspend", "reason": "extradition pending"},
    ),
    MessageType.RENEWAL_PROMPT: (
        RenewalPromptBody,
        {
            "prompt": {
                "notice_id": "red-2026-000001",
                "requester": "FRA",
                "version": 3,
                "expires_at": "2031-11-23T06:03:00.202457Z",
            }
        },
    ),
    MessageType.ACKNOWLEDGEMENT: (AcknowledgementBody, {"acknowledged": MESSAGE_ID}),
    MessageType.DELIVERY_RECEIPT: (
        DeliveryReceiptBody,
        {
            "delivered": MESSAGE_ID,
            "recipient": "DEU",
            "hub": "hub:lyon",
            "precedence": "FLASH",
            "delivered_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.TEAM_REQUEST: (
        TeamRequestBody,
        {
            "request": {
                "requester": "FRA",
                "kind": "irt-dvi",
                "place": {"country": "FRA", "name": "Nice"},
                "starts_at": "2026-07-15T00:00:00.000000Z",
                "ends_at": "2026-08-15T00:00:00.000000Z",
                "incident": "lorry attack on the promenade",
            }
        },
    ),
    MessageType.TEAM_DECISION: (
        TeamDecisionBody,
        {
            "request_id": MESSAGE_ID,
            "decision": {"approved": False, "reasons": ["capacity"], "text": "no team free"},
        },
    ),
    MessageType.TEAM_REPORT: (
        TeamReportBody,
        {
            "report": {
                "team": "team:dvi-fra-nice-20260715",
                "phase": "scene-examination",
                "phase_complete": True,
                "text": "scene cleared",
                "counts": {"bodies_recovered": 86},
            }
        },
    ),
    MessageType.TEAM_CONVERSION: (
        TeamConversionBody,
        {"team": "team:imest-fra-nice-20260715", "to_kind": "irt-crime", "crisis": "attack"},
    ),
    MessageType.DEPLOYMENT_CLOSED: (
        DeploymentClosedBody,
        {
            "team": "team:dvi-fra-nice-20260715",
            "closed_at": "2026-08-15T00:00:00.000000Z",
            "reason": "identification complete",
        },
    ),
    MessageType.CHECK_REQUEST: (
        CheckRequest,
        {
            "correlation_id": "flight-AF1234",
            "asker": "team:imest-2026-01",
            "items": [
                {"kind": "travel-document", "number": "12AB34567", "issuing_country": "FRA"},
                {"kind": "person", "family_name": "Dupont", "forenames": "Jean"},
            ],
        },
    ),
    MessageType.CHECK_ANSWER: (
        CheckAnswer,
        {
            "correlation_id": "flight-AF1234",
            "asker": "FRA",
            "results": [
                {"index": 0, "item": {"kind": "vehicle", "plate": "AB-123-CD", "country": "FRA"}}
            ],
            "answered_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.HIT_CONFIRMATION_REQUEST: (
        HitConfirmationRequest,
        {
            "confirmation_id": "c1",
            "correlation_id": "flight-AF1234",
            "asker": "DEU",
            "owner": "FRA",
            "record": {
                "database": "SLTD",
                "number": "12AB34567",
                "issuing_country": "FRA",
                "document_type": "passport",
                "status": "stolen",
                "reported_on": "2024-02-29",
                "reporting_ncb": "FRA",
            },
            "urgency": "urgent",
            "requested_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.HIT_CONFIRMATION: (
        HitConfirmation,
        {
            "confirmation_id": "c1",
            "owner": "FRA",
            "confirmed": True,
            "confirmed_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.MULTI_COUNTRY_QUERY: (
        MultiCountryQuery,
        {"query_id": "q1", "asker": "ITA", "targets": ["FRA", "DEU"], "question": "seen him?"},
    ),
    MessageType.MULTI_COUNTRY_REPLY: (
        MultiCountryReply,
        {
            "query_id": "q1",
            "responder": "FRA",
            "answer": "no",
            "replied_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.CONSOLIDATED_ANSWER: (
        ConsolidatedAnswer,
        {
            "query_id": "q1",
            "asker": "ITA",
            "answers": {"FRA": "no"},
            "silent": ["DEU"],
            "consolidated_at": "2026-11-23T06:03:00.202457Z",
        },
    ),
    MessageType.STOLEN_VEHICLE_REPORT: (
        StolenVehicleReport,
        {"record": _CAR, "reported_at": "2026-11-23T06:04:00.000000Z"},
    ),
    MessageType.STOLEN_VEHICLE_UPDATE: (
        StolenVehicleUpdate,
        {
            "record": _CAR,
            "reported_at": "2026-11-23T06:04:00.000000Z",
            "circulated_at": "2026-11-23T06:04:00.120000Z",
        },
    ),
}


def test_every_message_type_has_a_body_example() -> None:
    assert set(BODY_EXAMPLES) == set(MessageType)


@pytest.mark.parametrize(
    ("message_type", "model", "fields"),
    [(t, m, f) for t, (m, f) in BODY_EXAMPLES.items()],
    ids=[t.value for t in BODY_EXAMPLES],
)
def test_a_body_is_read_as_the_model_its_type_names(
    message_type: MessageType, model: type[BaseModel], fields: dict[str, Any]
) -> None:
    body = BODY_ADAPTER.validate_json(json.dumps({"type": message_type.value, **fields}))
    assert type(body) is model
    assert body.type is message_type
    assert BODY_ADAPTER.validate_json(BODY_ADAPTER.dump_json(body)) == body


def test_a_body_is_compact_json_with_its_type_first() -> None:
    body = MessageBody(subject="Réquisition", text="ligne 1\nligne 2")
    assert BODY_ADAPTER.dump_json(body) == (
        '{"type":"message","subject":"Réquisition","text":"ligne 1\\nligne 2"}'.encode()
    )


@pytest.mark.parametrize(
    "document",
    [
        {"type": "gossip", "subject": "s", "text": "t"},
        {"subject": "s", "text": "t"},
        {"type": "message", "subject": "s", "text": "t", "attachment": "x"},
        {"type": "message", "subject": "", "text": "t"},
        {"type": "message", "subject": "s" * 257, "text": "t"},
        {"type": "message", "subject": "s", "text": "t" * 60_001},
        {"type": "message", "subject": "s", "text": 42},
        {"type": "db-check-query", "items": []},
        {"type": "ack", "acknowledged": MESSAGE_ID.upper()},
        {
            "type": "delivery-receipt",
            **BODY_EXAMPLES[MessageType.DELIVERY_RECEIPT][1],
            "recipient": "auditor",
        },
    ],
    ids=[
        "unknown-type",
        "no-type",
        "unknown-field",
        "empty-subject",
        "long-subject",
        "long-text",
        "text-number",
        "no-items",
        "uppercase-uuid",
        "receipt-to-auditor",
    ],
)
def test_a_body_breaking_its_contract_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BODY_ADAPTER.validate_json(json.dumps(document))
