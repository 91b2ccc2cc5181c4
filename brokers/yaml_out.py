"""A small, deterministic YAML writer for JSON-like data (the published contract).

The backbone has no YAML library at run time; JSON data needs only block mappings,
block sequences and scalars. Strings are written plain when YAML reads them back as the
same string, else as JSON strings (a JSON string is a valid YAML double-quoted scalar).
``tests/unit/test_contract.py`` reads the output back with PyYAML.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dump_yaml"]

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./()<>+-]*$")
_RESERVED = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf"}
)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} as YAML: only JSON data")
    plain = (
        _PLAIN.match(value)
        and value.lower() not in _RESERVED
        and not value.endswith(" ")
        and ": " not in value
        and " #" not in value
    )
    return value if plain else json.dumps(value, ensure_ascii=False)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"YAML keys here must be strings, not {key!r}")
    return _scalar(key)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_key(key)}:")
                out += _lines(item, indent + (0 if isinstance(item, list) else 2))
            else:
                out.append(f"{pad}{_key(key)}: {_inline(item)}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _lines(item, indent + 2)
                out.append(f"{pad}- {nested[0].lstrip()}")
                out += nested[1:]
            else:
                out.append(f"{pad}- {_inline(item)}")
        return out
    return [f"{pad}{_scalar(value)}"]


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump_yaml(data: Any) -> str:
    """``data`` (dicts, lists, strings, numbers, booleans, None) as block YAML text."""
    return "\n".join(_lines(data, 0)) + "\n"
