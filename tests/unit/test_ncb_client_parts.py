"""The bureau client's parts that need no broker: its state file, bodies and JSON, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agents.cli import main
from agents.ncb.adapter import Opened
from agents.ncb.client import InboxMessage, InboxReceipt, acknowledgeable
from agents.ncb.client_state import ClientState, HandedOver, state_path
from agents.ops.bureau_commands import BureauCommandError, body_from_args, item_json
from schemas.bodies import DiffusionBody, MessageBody
from schemas.header import MessageType, Precedence
from tests.unit.factories import make_header


def entry(offset: int, message_id: str | None, timestamp_ms: int = 1000) -> HandedOver:
    return HandedOver("t.ncb.DEU.inbox", 0, offset, timestamp_ms, message_id, "message")


def test_the_state_file_keeps_ids_and_positions_across_loads(tmp_path: Path) -> None:
    path = state_path(tmp_path, "team:dvi-1")
    assert path == tmp_path / "clients" / "team-dvi-1" / "opened.jsonl"
    state = ClientState.load(path)
    state.record(entry(3, "m-3"))
    state.record(entry(4, None))
    state.close()

    again = ClientState.load(path)
    assert again.opened == {"m-3"}
    assert again.handed_over("t.ncb.DEU.inbox", 0, 3, 1000)
    assert again.handed_over("t.ncb.DEU.inbox", 0, 4, 1000)
    assert not again.handed_over("t.ncb.DEU.inbox", 0, 5, 1000)
    # the same offset with another timestamp is another record (a broker that lost its log)
    assert not again.handed_over("t.ncb.DEU.inbox", 0, 3, 2000)
    again.close()


def test_a_torn_last_line_is_ignored_and_appending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "opened.jsonl"
    state = ClientState.load(path)
    state.record(entry(0, "m-0"))
    state.close()
    with path.open("a", encoding="utf-8") as file:
        file.write('{"topic": "t.ncb.DEU.inbox", "partit')  # a crash mid-write

    state = ClientState.load(path)
    assert state.opened == {"m-0"}
    state.close()
    with pytest.raises(RuntimeError, match="closed"):
        state.record(entry(1, "m-1"))


def args(**values: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "text": None,
        "body_file": None,
        "subject": None,
        "type": MessageType.MESSAGE.value,
    }
    return argparse.Namespace(**{**defaults, **values})


def test_bodies_from_text_and_from_a_json_file(tmp_path: Path) -> None:
    assert body_from_args(args(text="Vehicle seized\nVIN 123")) == MessageBody(
        subject="Vehicle seized", text="Vehicle seized\nVIN 123"
    )
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"subject": "s", "text": "t", "purpose": "locate"}))
    assert body_from_args(args(body_file=alert, type="diffusion")) == DiffusionBody(
        subject="s", text="t", purpose="locate"
    )
    with pytest.raises(BureauCommandError, match="--body-file"):
        body_from_args(args(text="hi", type="diffusion"))
    with pytest.raises(BureauCommandError, match="not a valid message body: purpose: Extra"):
        body_from_args(args(body_file=alert))
    alert.write_text(json.dumps({"type": "ack", "acknowledged": "x"}))
    with pytest.raises(BureauCommandError, match="holds a 'ack' body"):
        body_from_args(args(body_file=alert))


def message(**header: object) -> InboxMessage:
    opened = Opened(
        make_header(**header), MessageBody(subject="s", text="t"), Precedence.FLASH, "hub:lyon"
    )
    return InboxMessage(opened.header, opened.body, opened.precedence, opened.hub, 0, 7, opened)


def test_messages_and_receipts_as_json_lines() -> None:
    item = message()
    line = item_json(item, "ack-1")
    assert line["kind"] == "message"
    assert (line["offset"], line["precedence"], line["declared_precedence"]) == (
        7,
        "FLASH",
        "ROUTINE",
    )
    assert (line["body"], line["ack_id"]) == (
        {"type": "message", "subject": "s", "text": "t"},
        "ack-1",
    )
    json.dumps(line)
    receipt = item_json(InboxReceipt(item.opened, 0, 8))
    assert receipt["kind"] == "receipt"
    assert receipt["receipt"]["header"]["message_id"] == item.message_id
    json.dumps(receipt)


def test_only_bureaus_and_teams_traffic_is_acknowledged() -> None:
    assert acknowledgeable(message())
    assert acknowledgeable(message(sender="team:dvi-1"))
    assert not acknowledgeable(message(sender="hub:lyon"))
    assert not acknowledgeable(message(message_type=MessageType.ACKNOWLEDGEMENT))


def test_send_and_inbox_need_a_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("I247_BOOTSTRAP", raising=False)
    assert main(["send", "--as", "FRA", "--to", "DEU", "--text", "hi"]) == 2
    assert main(["inbox", "--as", "DEU"]) == 2
    assert "set I247_BOOTSTRAP" in capsys.readouterr().err
