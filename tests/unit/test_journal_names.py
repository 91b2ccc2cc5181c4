"""Journal events are matched on their typed models (``schemas.journal``), never by name:
no module of ``agents/`` or ``streams/`` compares, looks up or prefix-matches a control
journal event's name as a string literal (issue 13 item 2)."""

from __future__ import annotations

import ast
from pathlib import Path

from schemas.journal import journal_models

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("agents", "streams")
NAMES = frozenset(journal_models())
PREFIXES = frozenset(name[: i + 1] for name in NAMES for i, c in enumerate(name) if c == "-")
_PREFIX_CALLS = frozenset({"startswith", "endswith", "removeprefix"})


def _strings(node: ast.AST) -> list[str]:
    """The string literals ``node`` is, or holds as a tuple, list or set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [text for element in node.elts for text in _strings(element)]
    return []


def _matches(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a journal event name is matched as a literal: compared (``==``, ``in``),
    a ``case``, a subscript or a dict key, or a prefix of names to ``startswith``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            found += [(node.lineno, s) for o in operands for s in _strings(o) if s in NAMES]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, s) for s in _strings(node.value) if s in NAMES]
        elif isinstance(node, ast.Subscript):
            found += [(node.lineno, s) for s in _strings(node.slice) if s in NAMES]
        elif isinstance(node, ast.Dict):
            keys = [key for key in node.keys if key is not None]
            found += [(node.lineno, s) for k in keys for s in _strings(k) if s in NAMES]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in _PREFIX_CALLS:
            args = [text for arg in node.args for text in _strings(arg)]
            found += [(node.lineno, s) for s in args if s in PREFIXES or s in NAMES]
    return found


def test_the_scan_sees_a_match_by_name() -> None:
    sample = """
if event["event"] == "notice-decided": pass
if name in ("lease-claimed", "x"): pass
if name.startswith(("notice-", "renewal-")): pass
keys = {"hit-confirmed": ("confirmation_id",)}
match name:
    case "team-closed": pass
"""
    found = {text for _, text in _matches(ast.parse(sample))}
    assert found == {
        "notice-decided",
        "lease-claimed",
        "notice-",
        "renewal-",
        "hit-confirmed",
        "team-closed",
    }


def test_no_module_matches_a_journal_event_by_its_name() -> None:
    matched = {
        f"{path.relative_to(ROOT).as_posix()}:{line}: {text}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in _matches(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert matched == set()
