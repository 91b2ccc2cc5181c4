"""Every command's help shows its options' defaults and the ``I247_*`` variables it reads."""

from __future__ import annotations

import argparse

import pytest

from agents.cli import _parser
from agents.cli_help import HelpFormatter, environment_epilog
from brokers.settings import VARIABLES


def commands(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its path ("audit verify")."""
    found = {path: parser} if path else {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= commands(child, f"{path} {name}".strip())
    return found


ALL = commands(_parser())


def test_the_commands_are_all_there() -> None:
    assert {"demo", "hub", "simulate", "keys init", "provision", "bench", "archive"} <= set(ALL)
    assert {"audit verify", "audit prove", "audit consistency", "audit bench", "replay"} <= set(ALL)


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_option_with_a_default_shows_it(path: str) -> None:
    parser = ALL[path]
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
            continue
        shown = HelpFormatter("x")._get_help_string(action)
        assert "default" in shown.lower(), f"{path} {action.option_strings[0]}: {shown!r}"
    assert "%(default)" not in text


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_command_names_the_variables_it_reads(path: str) -> None:
    text = ALL[path].format_help()
    assert "environment (I247_*" in text
    assert "exit codes:" in text
    if path in {"hub", "demo", "simulate", "replay", "archive", "provision"}:
        assert "I247_BOOTSTRAP" in text
        assert "I247_TOPIC_PREFIX" in text
    if path in {"keys init", "audit verify"}:
        assert "I247_KEYS_DIR" in text
        assert "I247_BOOTSTRAP" not in text


def test_the_shown_defaults_are_the_real_ones() -> None:
    text = ALL["demo"].format_help()
    assert "seconds of traffic (default: 30.0)" in " ".join(text.split())
    assert "I247_LEASE_TTL_MS" in text
    assert "(default: 3000)" in text


def test_a_variable_added_to_the_registry_appears_in_its_groups_help() -> None:
    for variable in VARIABLES.values():
        assert variable.name in environment_epilog([variable.group])
