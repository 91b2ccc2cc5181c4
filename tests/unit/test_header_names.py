"""Header names are spelled once, in ``schemas.header_names``: no other module of the
source tree writes one as a literal (the contract and every reader take them from there)."""

from __future__ import annotations

import ast
from pathlib import Path

from schemas import header_names

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("schemas", "brokers", "streams", "agents", "tools")
NAMES = {
    value
    for value in vars(header_names).values()
    if isinstance(value, str) and value.startswith(header_names.BACKBONE_PREFIX)
}
NAMES |= {header_names.BACKBONE_PREFIX}
DESKS_NOT_YET = {  # the desks are being moved to effects (issue 13 item 1): not yet here
    "streams/desks/shell.py",
    "streams/desks/ccc_desk.py",
    "streams/desks/notice_desk.py",
    "streams/desks/nominal_feed.py",
}


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    formatted = {  # the text of f-strings (f"i247-{name}" names a client, not a header)
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in formatted:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            text = (
                node.value.decode(errors="replace") if isinstance(node.value, bytes) else node.value
            )
            if text in NAMES:
                found.append((node.lineno, text))
    return found


def test_the_names_are_the_documented_ones() -> None:
    assert "i247-sealed-topic" in NAMES
    assert "i247-lease-epoch" in NAMES


def test_no_module_spells_a_header_name_but_header_names() -> None:
    spelled = {
        f"{path.relative_to(ROOT).as_posix()}:{line}: {text}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "header_names.py" and path.relative_to(ROOT).as_posix() not in DESKS_NOT_YET
        for line, text in _literals(path)
    }
    assert spelled == set()


def test_the_scan_finds_header_names_and_only_them(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('a = ("i247-hub", b"i247-origin", "i247-check", f"i247-{a}", "i247-")\n')
    assert _literals(module) == [(1, "i247-hub"), (1, "i247-origin"), (1, "i247-")]
