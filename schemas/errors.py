"""Why a message is refused, as exception types that carry a dead-letter reason code.

Errors here are about *input from the wire* (h11's RemoteProtocolError): each is caught
at the edge, and the record goes to the dead-letter topic with ``reason`` and the message.
Our own bugs are never one of these; they crash loudly.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BadSignature",
    "KeyExpired",
    "KeyNotSender",
    "KeyRevoked",
    "MalformedMessage",
    "NotARecipient",
    "OversizedMessage",
    "RejectReason",
    "RejectedMessage",
    "ReplayedMessage",
    "RevokedRecipient",
    "StaleMessage",
    "TamperedMessage",
    "UnknownParticipant",
]


class RejectReason(StrEnum):
    """Reason codes written to the ``i247.dlq.reason`` header of a dead letter."""

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_SENDER = "unknown-sender"
    UNKNOWN_RECIPIENT = "unknown-recipient"
    BAD_SIGNATURE = "bad-signature"
    TAMPERED = "tampered"
    NOT_A_RECIPIENT = "not-a-recipient"
    STALE = "stale"
    REPLAYED = "replayed"
    RECIPIENT_REVOKED = "recipient-revoked"
    KEY_NOT_SENDER = "key-not-sender"
    KEY_REVOKED = "key-revoked"
    KEY_EXPIRED = "key-expired"


class RejectedMessage(Exception):
    """Base of every refusal; ``reason`` is the dead-letter code, ``str()`` the detail."""

    reason: RejectReason = RejectReason.MALFORMED


class MalformedMessage(RejectedMessage):
    """The record is not a well-formed sealed envelope (bad JSON, schema, encoding)."""

    reason = RejectReason.MALFORMED


class OversizedMessage(RejectedMessage):
    """The record is larger than the configured maximum (``I247_MAX_MESSAGE_BYTES``)."""

    reason = RejectReason.OVERSIZED


class UnknownParticipant(RejectedMessage):
    """A sender or recipient that the key directory does not know."""

    def __init__(self, participant: str, *, role: str) -> None:
        self.participant = participant
        self.role = role
        self.reason = (
            RejectReason.UNKNOWN_SENDER if role == "sender" else RejectReason.UNKNOWN_RECIPIENT
        )
        super().__init__(
            f"{role} {participant!r} is not in the key directory; "
            "add its public keys with `i247 keys init` or correct the address"
        )


class BadSignature(RejectedMessage):
    """The signature is not the sender's: wrong key, unknown key id, or invalid bytes."""

    reason = RejectReason.BAD_SIGNATURE


class TamperedMessage(RejectedMessage):
    """The header or body differs from what the sender sealed."""

    reason = RejectReason.TAMPERED


class KeyNotSender(RejectedMessage):
    """An inbound record keyed by another code than its sender's, though sealed for that key.

    The signature binds the key, so this is the sender's own doing (a re-keyed record fails
    as ``tampered`` instead); refused so no one writes under another bureau's key.
    """

    reason = RejectReason.KEY_NOT_SENDER

    def __init__(self, key: bytes, *, sender: str, message_id: str) -> None:
        self.key = key
        self.sender = sender
        shown = key.decode("utf-8", errors="replace")
        super().__init__(
            f"record key {shown!r} is not the sender {sender!r} of {message_id}, which "
            f"{sender} sealed for that key; inbound records must be keyed and sealed with "
            f"the sender's own id ({sender!r})"
        )


class NotARecipient(RejectedMessage):
    """The reader holds no key the message was sealed for."""

    reason = RejectReason.NOT_A_RECIPIENT


class StaleMessage(RejectedMessage):
    """Created outside the freshness window (too old, or too far in the future)."""

    reason = RejectReason.STALE


class ReplayedMessage(RejectedMessage):
    """A message id already seen at another place in the log."""

    reason = RejectReason.REPLAYED


class RevokedRecipient(RejectedMessage):
    """A recipient is a response team whose deployment has closed: its keys take no new traffic."""

    reason = RejectReason.RECIPIENT_REVOKED

    def __init__(self, team: str, *, closed_at: str, host: str | None = None) -> None:
        self.team = team
        self.closed_at = closed_at
        instead = f"the host NCB {host!r} or the CCC ('ccc')" if host else "the CCC ('ccc')"
        super().__init__(
            f"recipient {team!r} is a response team whose deployment closed at {closed_at}; "
            f"its keys are revoked for new traffic: address {instead} instead, and drop "
            f"{team!r} from your recipients"
        )


class KeyRevoked(RejectedMessage):
    """Signed with (or sealed for) a key the CCC revoked (``i247 keys revoke``): never trusted
    again, whatever the message's age."""

    reason = RejectReason.KEY_REVOKED

    def __init__(self, participant: str, kid: str, *, revoked_at: str, why: str) -> None:
        self.participant = participant
        self.kid = kid
        super().__init__(
            f"key {kid} of {participant} was revoked at {revoked_at} ({why}); "
            f"{participant} must seal with its current key (the key directory topic has it)"
        )


class KeyExpired(RejectedMessage):
    """Signed with a rotated-out key after its grace period (``verify_until``) ended."""

    reason = RejectReason.KEY_EXPIRED

    def __init__(self, participant: str, kid: str, *, verify_until: str) -> None:
        self.participant = participant
        self.kid = kid
        super().__init__(
            f"key {kid} of {participant} was rotated out and verified only until "
            f"{verify_until}; {participant} must load its current key and send again"
        )
