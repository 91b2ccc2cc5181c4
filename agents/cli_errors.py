"""What ``i247`` says and returns when a command fails: one line, one documented code.

``explain(error)`` is pure: it maps an exception to an exit code and a single line that
says what went wrong and what to do next. ``agents.cli.main`` is the one place that calls
it; commands raise specific exceptions and leave the wording to their types.

    0  done
    1  a finding: the command worked and found something wrong (a tampered archive,
       a message lost in the demo)
    2  usage or configuration: a bad option or I247_* variable
    3  the environment: broker unreachable, topics not provisioned, a file missing or
       unreadable, a directory unwritable
    4  an unexpected error (a bug): rerun with --traceback and report it
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass

from aiokafka.errors import KafkaConnectionError, KafkaError

from agents.ops.dlq import NotRedrivable
from agents.ops.dlq_commands import DeadLetterNotFound
from agents.ops.hub_events import InvalidSchedule
from agents.ops.replay_filter import ReplayFilterError
from brokers.access import BrokerAccessError
from brokers.acls import AclError
from brokers.archive_store import ArchiveUnreadable
from brokers.connect_via import InvalidConnectVia
from brokers.embedded import EmbeddedBrokerError
from brokers.provisioning import BrokerUnreachable, ProvisionError, TopicsNotProvisioned
from brokers.settings import SettingsError
from brokers.tracing import TracingNotInstalled
from schemas.errors import UnknownParticipant
from schemas.key_directory import KeyEntryRefused
from schemas.keys import KeyFileError

__all__ = [
    "DONE",
    "ENVIRONMENT",
    "EXIT_CODES",
    "FINDING",
    "INTERNAL",
    "INTERRUPTED",
    "TERMINATED",
    "USAGE",
    "Failure",
    "Terminated",
    "UsageError",
    "explain",
]

DONE, FINDING, USAGE, ENVIRONMENT, INTERNAL = 0, 1, 2, 3, 4
INTERRUPTED = 130  # the shell's convention for SIGINT
TERMINATED = 143  # and for SIGTERM

EXIT_CODES = """\
exit codes:
  0  done
  1  a finding: e.g. a tampered archive (audit verify), a message lost (demo)
  2  usage or configuration: a bad option or I247_* variable
  3  the environment: broker unreachable, topics not provisioned, a file missing or
     unreadable, a directory unwritable
  4  an unexpected error (a bug): rerun with --traceback and report it
every failure prints one line on stderr; --traceback or I247_LOG_LEVEL=debug adds the trace"""


class Terminated(Exception):
    """A SIGTERM a command turned into an orderly stop (``i247 demo``): exit 143."""


class UsageError(ValueError):
    """Options that parse but cannot be used together; the message says which to change."""


@dataclass(frozen=True, slots=True)
class Failure:
    """The exit code and the one line ``i247`` prints for an exception."""

    code: int
    line: str


_USAGE = (
    SettingsError,
    InvalidConnectVia,
    InvalidSchedule,
    ReplayFilterError,
    UsageError,
    BrokerAccessError,
    AclError,
    NotRedrivable,
    DeadLetterNotFound,
    KeyEntryRefused,
    UnknownParticipant,
)
_ENVIRONMENT = (
    BrokerUnreachable,
    TopicsNotProvisioned,
    KeyFileError,
    ArchiveUnreadable,
    EmbeddedBrokerError,
    TracingNotInstalled,
)
_OS_HINTS = {
    errno.EACCES: "check its permissions, or choose a path you may write",
    errno.EPERM: "check its permissions, or choose a path you may write",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another path",
    errno.EISDIR: "it is a directory: name a file",
    errno.ENOSPC: "the disk is full: free space or choose another path",
}


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside exception groups (asyncio task groups, gather)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _os_line(error: OSError) -> str:
    if error.filename is None:  # raised by us with a whole sentence
        return str(error)
    what = error.strerror or type(error).__name__
    hint = _OS_HINTS.get(error.errno or 0, "check the path and its permissions")
    return f"{what}: {error.filename}; {hint}"


def explain(error: BaseException) -> Failure:
    """The exit code and the one line for ``error`` (never more than one line)."""
    error = _leaf(error)
    code, line = _classify(error)
    return Failure(code, " ".join(line.split()))


def _classify(error: BaseException) -> tuple[int, str]:
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(error, Terminated):
        return TERMINATED, str(error)
    if isinstance(error, _USAGE):
        return USAGE, str(error)
    if isinstance(error, ProvisionError):  # the broker refused: a setting to change
        return USAGE, str(error)
    if isinstance(error, _ENVIRONMENT):
        return ENVIRONMENT, str(error)
    if isinstance(error, KafkaConnectionError):
        return ENVIRONMENT, (
            f"cannot reach the broker ({error}); check it is up and I247_BOOTSTRAP points at it"
        )
    if isinstance(error, KafkaError):
        return ENVIRONMENT, f"the broker failed a request ({error!r}); check its health and logs"
    if isinstance(error, sqlite3.DatabaseError):
        return ENVIRONMENT, f"an SQLite file could not be read ({error}); check the path"
    if isinstance(error, OSError):
        return ENVIRONMENT, _os_line(error)
    detail = str(error) or "(no message)"
    return INTERNAL, (
        f"unexpected {type(error).__name__}: {detail}; this is a bug: rerun with "
        "--traceback (or I247_LOG_LEVEL=debug) and report it"
    )
