"""``i247 keys rotate`` and ``i247 keys revoke``: argparse wiring over ``agents.ops.key_lifecycle``.

    i247 keys rotate --participant FRA                      # new key; the old verifies 24 h
    i247 keys rotate --participant FRA --grace-seconds 600
    i247 keys revoke --participant FRA --key-id 3f2a... --reason "laptop stolen"

Both read I247_BOOTSTRAP (required), I247_TOPIC_PREFIX and I247_KEYS_DIR (which must hold
the directory authority's key), and print one line of what they did.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import UTC, datetime, timedelta

from agents.ops.key_lifecycle import revoke_key, rotate_key
from brokers.settings import Settings, SettingsError
from schemas.header import format_timestamp
from schemas.key_directory import DEFAULT_GRACE

__all__ = ["register_key_lifecycle"]

_KID = re.compile(r"^[0-9a-f]{16}$")


def _kid(text: str) -> str:
    if not _KID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a key id (16 lowercase hex digits)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def register_key_lifecycle(
    key_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``keys rotate`` and ``keys revoke`` (each sets its ``handler``)."""
    rotate = key_commands.add_parser(
        "rotate", help="issue a participant a new key and publish it on the key directory"
    )
    rotate.add_argument("--participant", required=True, help="e.g. FRA, hub:lyon")
    rotate.add_argument(
        "--grace-seconds",
        type=_seconds,
        default=DEFAULT_GRACE.total_seconds(),
        help="how long the old key still verifies (86400: a day)",
    )
    rotate.set_defaults(handler=_rotate)
    revoke = key_commands.add_parser(
        "revoke", help="revoke a participant's key at once (replaced if active); journaled"
    )
    revoke.add_argument("--participant", required=True, help="e.g. FRA")
    revoke.add_argument("--key-id", required=True, type=_kid, help="the signing key id")
    revoke.add_argument("--reason", required=True, help="why (kept in the entry and journal)")
    revoke.set_defaults(handler=_revoke)


def _needs_broker(settings: Settings) -> None:
    if not settings.bootstrap:
        raise SettingsError(
            "i247 keys rotate|revoke publish on the key directory topic: set I247_BOOTSTRAP"
        )


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    _needs_broker(settings)
    grace = timedelta(seconds=args.grace_seconds)
    change = asyncio.run(rotate_key(settings, args.participant, now=datetime.now(UTC), grace=grace))
    until = next(k.verify_until for k in change.entry.keys if k.kid == change.old_kid)
    print(
        f"{args.participant}: key {change.new_kid} active (entry {change.entry.sequence} on "
        f"{settings.topics.keys}); {change.old_kid} verifies until {until}, never sealed for"
    )
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    _needs_broker(settings)
    now = datetime.now(UTC)
    change = asyncio.run(
        revoke_key(settings, args.participant, args.key_id, reason=args.reason, now=now)
    )
    replaced = (
        f"; replaced by {change.new_kid} (private keys in {settings.keys_dir})"
        if change.new_kid
        else ""
    )
    print(
        f"{args.participant}: key {args.key_id} revoked at {format_timestamp(now)} (entry "
        f"{change.entry.sequence} on {settings.topics.keys}); journaled key-revoked{replaced}"
    )
    return 0
