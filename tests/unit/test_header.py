"""The routing header and participant ids: strict contracts, refused with reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.participants import ParticipantKind, kind_of
from tests.unit.factories import make_header


@pytest.mark.parametrize(
    ("participant", "kind"),
    [
        ("FRA", ParticipantKind.NCB),
        ("hub:lyon", ParticipantKind.HUB),
        ("team:irt-2026-001", ParticipantKind.TEAM),
        ("auditor", ParticipantKind.AUDITOR),
    ],
)
def test_participant_ids(participant: str, kind: ParticipantKind) -> None:
    assert kind_of(participant) is kind


@pytest.mark.parametrize("bad", ["fra", "FR", "hub:paris", "team:", "team:-x", "XXXX", ""])
def test_malformed_participant_ids_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO alpha-3"):
        kind_of(bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"created_at": datetime(2026, 11, 23, 12, 0)},
        {"message_id": "6F1D2C1E-24F7-4C0C-9A1E-1247A5E5C0DE"},
        {"recipients": ["DEU", "DEU"]},
        {"recipients": ["auditor"]},
        {"recipients": []},
        {
            "recipients": [a + b + c for a in "ABC" for b in "ABCDEFGHIJ" for c in "ABCDEFGHIJ"][
                :257
            ]
        },
        {"trace_id": "xyz"},
        {"evaluation": "D5"},
        {"sender": "ccc"},
    ],
)
def test_invalid_headers_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_header(**overrides)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        make_header(subject="secret in clear")


def test_created_at_has_one_wire_form() -> None:
    assert make_header().model_dump(mode="json")["created_at"] == "2026-11-23T12:00:00.000000Z"


def test_ccc_is_a_valid_recipient() -> None:
    assert make_header(recipients=["ccc", "DEU"]).recipients == ["ccc", "DEU"]
