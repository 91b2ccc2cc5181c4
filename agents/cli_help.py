"""``i247 --help`` and each command's help: defaults shown, and the ``I247_*`` it reads.

The variables come from ``brokers.settings.VARIABLES``, the one registry of names, so a
variable added there appears in the help of every command that reads its group.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version

from brokers.settings import GROUPS, VARIABLES

__all__ = [
    "HelpFormatter",
    "environment_epilog",
    "finish_help",
    "non_negative",
    "package_version",
    "positive",
    "share",
]

_NO_DEFAULT: tuple[object, ...] = (None, False, argparse.SUPPRESS)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps epilogs as written and adds "(default: X)" to options that have a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or not action.option_strings:
            return text
        if action.default in _NO_DEFAULT or action.default == []:
            return text
        return f"{text} (default: %(default)s)".strip()


def environment_epilog(groups: Iterable[str]) -> str:
    """The ``I247_*`` variables of ``groups``: name, default, what it accepts."""
    wanted = list(groups)
    lines = ["environment (I247_*; an unknown I247_ name is refused):"]
    for group in wanted:
        for variable in (v for v in VARIABLES.values() if v.group == group):
            text = f"{variable.accepts} (default: {variable.default})"
            lines += textwrap.wrap(
                text,
                width=96,
                initial_indent=f"  {variable.name:<27} ",
                subsequent_indent=" " * 30,
            )
    unknown = set(wanted) - set(GROUPS)
    assert not unknown, f"no such variable group: {unknown}"
    return "\n".join(lines)


def finish_help(
    parser: argparse.ArgumentParser, reads: Mapping[str, tuple[str, ...]], trailer: str
) -> None:
    """Give every (sub)command the formatter and an epilog naming the variables it reads.

    ``reads`` maps a command path ("hub", "audit verify") to its variable groups; a
    subcommand without its own entry inherits its parent's.
    """
    _finish(parser, "", reads, tuple(GROUPS), trailer)


def _finish(
    parser: argparse.ArgumentParser,
    path: str,
    reads: Mapping[str, tuple[str, ...]],
    inherited: tuple[str, ...],
    trailer: str,
) -> None:
    groups = reads.get(path, inherited)
    parser.formatter_class = HelpFormatter
    if path:
        parser.epilog = environment_epilog(groups) + "\n\n" + trailer
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _finish(child, f"{path} {name}".strip(), reads, groups, trailer)


def package_version() -> str:
    """The installed version of the project (``i247 --version``)."""
    try:
        return version("i247-backbone")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: run `make .venv/.installed`)"


def positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number > 0")
    return value


def share(text: str) -> float:
    """An argparse type: a share 0 <= x <= 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1")
    return value


def non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value
