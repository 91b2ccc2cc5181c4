"""The published contract: docs/asyncapi.yaml is what the code generates, a real AsyncAPI
parser accepts it, and it lists every header, topic and journal event the code writes."""

from __future__ import annotations

import ast
import copy
import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.cli import main
from brokers.contract import ASYNCAPI_PATH, asyncapi_yaml
from brokers.contract import asyncapi_document as generate
from brokers.records import ReceivedRecord
from brokers.settings import Settings
from brokers.yaml_out import dump_yaml
from schemas import header_names as names
from schemas import journal as journal_models
from schemas.control_events import CONTROL_EVENTS
from schemas.header import Precedence
from schemas.leases import FenceTag, fence_headers
from schemas.team_journal import TeamEvent
from schemas.topics import TopicCatalog
from streams.core.intake import forwarding_headers
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState, journal_event
from tests.unit.factories import T0, make_header, small_keyring

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi"
PARSER = TOOL / "node_modules" / "@asyncapi" / "parser" / "package.json"


def asyncapi_document() -> dict[str, Any]:
    """A fresh copy of the generated document (generated once per test session)."""
    return copy.deepcopy(_generated())


@functools.cache
def _generated() -> dict[str, Any]:
    return generate()


def test_the_committed_document_is_what_the_code_generates() -> None:
    committed = (ROOT / ASYNCAPI_PATH).read_text(encoding="utf-8")
    assert committed == asyncapi_yaml(), "docs/asyncapi.yaml is stale: run `i247 contract`"


def test_the_yaml_reads_back_as_the_document() -> None:
    assert yaml.safe_load(asyncapi_yaml()) == asyncapi_document()


@pytest.mark.parametrize(
    "value",
    ["yes", "null", "1.0", "a: b", "x #y", "", " lead", "trail ", "-", "é", "$ref", "#/c", "0x1"],
)
def test_the_yaml_writer_keeps_awkward_strings_strings(value: str) -> None:
    data = {value: [value, {"k": value}], "n": [1, 2.5, True, None, [], {}]}
    assert yaml.safe_load(dump_yaml(data)) == data


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the AsyncAPI parser runs on Node.js")
    if not PARSER.is_file():
        pytest.skip("@asyncapi/parser is not installed: run `npm ci --prefix tools/asyncapi`")
    return node


def _validate(node: str, path: Path) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        [node, str(TOOL / "validate.js"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line]


def test_a_real_asyncapi_parser_accepts_the_document() -> None:
    code, diagnostics = _validate(_node(), ROOT / ASYNCAPI_PATH)
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert errors == []
    assert code == 0


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The validation can fail: an operation with an action AsyncAPI 3 does not know."""
    node = _node()
    broken = asyncapi_document()
    broken["operations"]["sendSealed"]["action"] = "publish"
    path = tmp_path / "broken.yaml"
    path.write_text(dump_yaml(broken), encoding="utf-8")
    code, diagnostics = _validate(node, path)
    assert code == 1
    assert any(d["severity"] == "error" and "action" in d["path"] for d in diagnostics)


def test_every_topic_of_the_catalog_is_a_channel() -> None:
    topics = TopicCatalog()
    addresses = {c["address"] for c in asyncapi_document()["channels"].values()}
    assert {spec.name for spec in topics.core()} <= addresses
    assert {topics.lane(s, p) for s in ("lyon", "singapore") for p in Precedence} <= addresses
    assert {"i247.ncb.{ncb}.inbox", "i247.team.{team}.inbox", "i247.replay.{name}"} <= addresses
    ncb = asyncapi_document()["channels"]["ncb-inbox"]["parameters"]["ncb"]["enum"]
    assert len(ncb) == 196
    assert "FRA" in ncb


def _header_names(message: str) -> set[str]:
    components = asyncapi_document()["components"]
    ref = components["messages"][message]["headers"]["$ref"]
    return set(components["schemas"][ref.rsplit("/", 1)[1]]["properties"])


def _state() -> HubState:
    directory, identities = small_keyring()
    return HubState(
        settings=Settings(),
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=identities["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: T0,
        random_bytes=os.urandom,
    )


def test_the_headers_the_code_writes_are_the_documented_ones() -> None:
    received = ReceivedRecord("i247.inbound", 2, 40, 0, b"FRA", b"{}", ())
    forwarded = forwarding_headers(received, make_header(), "FLASH", "hub:lyon")
    fenced = fence_headers(forwarded, FenceTag("intake", 3, 2, 40))
    assert [k for k, _ in fenced] == [*names.FORWARDING_HEADERS, *names.FENCE_HEADERS]
    assert set(names.FORWARDING_HEADERS) | set(names.FENCE_HEADERS) <= _header_names("forwarded")
    ready = journal_models.HubReady(hub="hub:lyon", time=T0, units=())
    event = journal_event(_state(), ready, "hub:lyon")
    assert [k for k, _ in event.headers] == list(names.CLOUDEVENT_HEADERS)
    assert set(names.CLOUDEVENT_HEADERS) | set(names.FENCE_HEADERS) == _header_names(
        "control-hub-ready"
    )


# --- the control events catalog against the code that writes them ----------------------

_WRITERS = {"journal_record", "_journal", "journal", "_event"}
_TYPED = {  # typed journal events (schemas.journal), written as models: class -> event name
    name: str(model.model_fields["event"].default)
    for name, model in vars(journal_models).items()
    if isinstance(model, type)
    and issubclass(model, journal_models.JournalEventModel)
    and "event" in model.model_fields
}


def _dict_keys(node: ast.expr | None) -> set[str]:
    if not isinstance(node, ast.Dict):
        return set()
    return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def _written_events() -> list[tuple[str, str, set[str]]]:
    """(where, event name or expression, literal field names) of every journal write in
    streams/, read from the source; a ``fields`` variable is resolved to the dict literal
    assigned to it in the same function."""
    found = []
    for path in sorted((ROOT / "streams").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned: dict[str, set[str]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
                            assigned[target.id] = _dict_keys(node.value)
            for node in ast.walk(function):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name in _TYPED:
                    typed = {kw.arg for kw in node.keywords if kw.arg} - {"hub", "time"}
                    found.append((f"{path.name}:{node.lineno}", _TYPED[name], typed))
                    continue
                args = node.args[1:] if name == "journal_record" else node.args
                if name not in _WRITERS or not args:
                    continue
                fields = {kw.arg for kw in node.keywords if kw.arg}
                if len(args) > 2:
                    given = args[2]
                    fields |= _dict_keys(given)
                    if isinstance(given, ast.Name):
                        fields |= assigned.get(given.id, set())
                event = args[0]
                label = event.value if isinstance(event, ast.Constant) else ast.unparse(event)
                if str(label).startswith("TeamEvent."):
                    label = TeamEvent[str(label).removeprefix("TeamEvent.")].value
                found.append((f"{path.name}:{node.lineno}", str(label), fields))
    return found


def test_every_event_name_the_hubs_write_is_in_the_catalog() -> None:
    written = _written_events()
    literal = {event for _, event, _ in written if not event.startswith(("f'", "event"))}
    assert literal, "the scan found no journal writes: has journal_record moved?"
    assert literal <= set(CONTROL_EVENTS)
    assert {e.value for e in TeamEvent} <= set(CONTROL_EVENTS)
    assert {"hub-alive", "hub-dead"} <= set(CONTROL_EVENTS)  # f"hub-{Liveness}"


def test_every_literal_field_the_hubs_write_is_in_the_catalog() -> None:
    checked = 0
    for where, event, fields in _written_events():
        if event in CONTROL_EVENTS:
            missing = fields - set(CONTROL_EVENTS[event].fields)
            assert not missing, f"{where}: {event} writes {missing}, not in the catalog"
            checked += bool(fields)
    assert checked >= 30, "the scan resolved too few events' fields to mean anything"


# --- the command --------------------------------------------------------------------


def test_the_command_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "asyncapi.yaml"
    assert main(["contract", "--check", "--output", str(path)]) == 3
    assert main(["contract", "--output", str(path)]) == 0
    assert main(["contract", "--check", "--output", str(path)]) == 0
    path.write_text(path.read_text() + "# edited\n")
    assert main(["contract", "--check", "--output", str(path)]) == 1
    assert "stale" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(_TYPED))
def test_every_typed_journal_event_is_cataloged_field_for_field(name: str) -> None:
    """A typed event (``schemas.journal``) writes its model's fields: all in the catalog,
    and every cataloged field is one of the model's."""
    model = getattr(journal_models, name)
    fields = set(model.model_fields) - {"event", "hub", "time"}
    assert fields == set(CONTROL_EVENTS[_TYPED[name]].fields)


# --- which events are typed, and who may still write untyped ones ------------------------

_DESK_MODULES = {  # the desks, being moved to effects: they type their own events there
    "desk_shell.py",
    "ccc_desk.py",
    "check_desk.py",
    "notice_desk.py",
    "team_desk.py",
    "vehicle_desk.py",
    "nominal_feed.py",
}


def test_every_cataloged_event_is_typed() -> None:
    assert set(journal_models.journal_models()) == set(CONTROL_EVENTS)


def _calls(path: Path, name: str) -> bool:
    """Whether the module at ``path`` calls a function or method named ``name``."""
    return any(
        isinstance(node, ast.Call)
        and name in (getattr(node.func, "id", None), getattr(node.func, "attr", None))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def test_only_the_desks_still_write_untyped_journal_events() -> None:
    callers = {
        path.relative_to(ROOT).as_posix()
        for folder in ("schemas", "brokers", "streams", "agents")
        for path in (ROOT / folder).rglob("*.py")
        if path.name not in _DESK_MODULES and _calls(path, "journal_record")
    }
    assert callers == set()
    assert _calls(ROOT / "streams" / "hub" / "runtime.py", "journal_event")  # the scan sees calls
