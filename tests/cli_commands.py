"""Every ``i247`` command, as argument lists, split by whether it talks to a broker.

One table for two tests: ``tests/unit/test_cli_broker_commands.py`` checks that it names
every command the parser has and agrees with ``agents.cli._needs_broker``;
``tests/integration/test_cli_errors.py`` runs each broker command against a closed port.
A new command fails the first until it is listed here, in one list or the other.
"""

from __future__ import annotations

__all__ = ["BROKER_COMMANDS", "NO_BROKER_COMMANDS"]

BROKER_COMMANDS: list[list[str]] = [
    ["hub", "--site", "lyon"],
    ["simulate", "--duration", "1"],
    ["demo", "--duration", "1", "--no-live"],
    ["archive"],
    ["replay", "--from-kafka", "--since", "1m"],
    ["replay", "--archive", "--publish", "drill"],
    ["provision"],
    ["bench", "--duration", "1"],
    ["audit", "bench", "--full"],
    ["keys", "rotate", "--participant", "FRA"],
    ["keys", "revoke", "--participant", "FRA", "--key-id", "0" * 16, "--reason", "lost"],
    ["acls", "--apply"],
    ["send", "--as", "FRA", "--to", "DEU", "--text", "Vehicle seized"],
    ["inbox", "--as", "DEU"],
    ["status"],
    ["dlq", "list"],
    ["dlq", "show", "0"],
    ["dlq", "redrive", "0", "--yes"],
    ["dashboard", "--port", "0"],
]
"""Commands that talk to the broker at ``I247_BOOTSTRAP`` (or start one): each checks it
answers before doing anything."""

NO_BROKER_COMMANDS: list[list[str]] = [
    ["keys", "init"],
    ["keys", "tls"],
    ["acls"],
    ["audit", "verify"],
    ["audit", "prove", "--topic", "t", "--partition", "0", "--offset", "0"],
    ["audit", "consistency", "--from", "1", "--to", "2"],
    ["audit", "bench"],
    ["replay", "--archive"],
    ["contract"],
]
"""Commands that work on files alone, whatever ``I247_BOOTSTRAP`` says."""
