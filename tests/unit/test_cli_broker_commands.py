"""Which ``i247`` commands need a broker: every command is listed, and the list is the
command line's own (``agents.cli._needs_broker``), so each is checked before it acts."""

from __future__ import annotations

import argparse

import pytest

from agents.cli import _needs_broker, _parser, _subcommand
from tests.cli_commands import BROKER_COMMANDS, NO_BROKER_COMMANDS


def command_paths(parser: argparse.ArgumentParser, path: str = "") -> set[str]:
    """Every runnable command of ``parser``: "hub", "keys rotate", "dlq list", …"""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= command_paths(child, f"{path} {name}".strip())
    return found or {path}


def path_of(args: list[str]) -> str:
    parsed = _parser().parse_args(args)
    return " ".join(filter(None, [parsed.command, _subcommand(parsed)]))


def test_every_command_is_listed_as_needing_a_broker_or_not() -> None:
    listed = {path_of(args) for args in BROKER_COMMANDS + NO_BROKER_COMMANDS}
    assert command_paths(_parser()) - listed == set()


@pytest.mark.parametrize("args", BROKER_COMMANDS, ids=" ".join)
def test_a_broker_command_checks_the_broker_first(args: list[str]) -> None:
    assert _needs_broker(_parser().parse_args(args))


@pytest.mark.parametrize("args", NO_BROKER_COMMANDS, ids=" ".join)
def test_a_file_command_never_waits_for_a_broker(args: list[str]) -> None:
    assert not _needs_broker(_parser().parse_args(args))
