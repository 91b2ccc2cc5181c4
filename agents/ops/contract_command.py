"""``i247 contract [--check] [--output PATH]``: write or check ``docs/asyncapi.yaml``.

The document is generated from the code (``brokers.contract``); ``--check`` exits 1, a
finding, when the file differs from what the code generates, so CI catches a stale one.
It reads no ``I247_*`` variable: the committed document uses the default topic prefix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brokers.contract import ASYNCAPI_PATH, asyncapi_yaml
from brokers.settings import Settings

__all__ = ["register_contract", "run_contract"]


def register_contract(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``contract`` to the ``i247`` subcommands; it sets ``args.handler``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "contract",
        help="write the AsyncAPI 3.0 contract generated from the code, or --check it",
        description="Generate the AsyncAPI 3.0 document of every topic, key, header and "
        "payload from the code. Reads no I247_* variable (topic prefix i247).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write: exit 1 if the file differs from the code (default: write it)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(ASYNCAPI_PATH),
        metavar="PATH",
        help=f"the document to write or check; '-' for standard output (default {ASYNCAPI_PATH})",
    )
    parser.set_defaults(handler=run_contract)


def run_contract(args: argparse.Namespace, settings: Settings) -> int:
    """Write or check the contract; 0 done, 1 stale, 3 the file to check is missing."""
    text = asyncapi_yaml()
    path: Path = args.output
    if str(path) == "-":
        sys.stdout.write(text)
        return 0
    if args.check:
        if not path.is_file():
            print(f"i247: {path} does not exist; run `i247 contract` to write it", file=sys.stderr)
            return 3
        if path.read_text(encoding="utf-8") != text:
            print(f"i247: {path} is stale; run `i247 contract` and commit it", file=sys.stderr)
            return 1
        print(f"{path} matches the code")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text.splitlines())} lines)")
    return 0
