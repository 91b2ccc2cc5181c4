"""Spoiling good records on purpose, so the dead-letter path is exercised end to end.

Each function takes a correctly sealed record (or what is needed to make one) and returns
the bad record a careless or hostile participant would send. The expected dead-letter
reason of each is ``agents.sim.traffic.EXPECTED_REASON``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os

from brokers.records import OutboundRecord
from schemas.bodies import Body
from schemas.header import RoutingHeader
from schemas.keys import Directory, PrivateIdentity
from schemas.sealing import SIG_LABEL, RandomBytes, parse_envelope, seal

__all__ = [
    "forge_signature",
    "key_as_another",
    "make_malformed",
    "make_oversized",
    "tamper_body",
    "tamper_header",
]


def _edit(record: OutboundRecord, edit: dict[str, object]) -> OutboundRecord:
    envelope = json.loads(record.value)
    for path, value in edit.items():
        target = envelope
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    value_bytes = json.dumps(envelope, separators=(",", ":")).encode()
    return dataclasses.replace(record, value=value_bytes)


def tamper_body(record: OutboundRecord) -> OutboundRecord:
    """Flip one bit of the ciphertext, leaving digests and signature as they were."""
    envelope = json.loads(record.value)
    ciphertext = bytearray(base64.b64decode(envelope["ciphertext"]))
    ciphertext[len(ciphertext) // 2] ^= 0x01
    return _edit(record, {"ciphertext": base64.b64encode(bytes(ciphertext)).decode()})


def tamper_header(record: OutboundRecord) -> OutboundRecord:
    """Raise the declared precedence in clear, as a sender trying to jump the queue might."""
    envelope = json.loads(record.value)
    raised = "FLASH" if envelope["header"]["precedence"] != "FLASH" else "ROUTINE"
    return _edit(record, {"header.precedence": raised})


def forge_signature(
    record: OutboundRecord, impostor: PrivateIdentity, max_bytes: int
) -> OutboundRecord:
    """Keep the content, but sign it with someone else's key."""
    sealed = parse_envelope(record.value, max_bytes=max_bytes)
    signature = impostor.signing_key.sign(SIG_LABEL + sealed.header_digest + sealed.body_digest)
    forged = dataclasses.replace(sealed, signature_kid=impostor.signing_kid, signature=signature)
    return dataclasses.replace(record, value=forged.to_bytes())


def make_malformed(record: OutboundRecord) -> OutboundRecord:
    """A truncated envelope: what a crashed gateway might leave behind."""
    return dataclasses.replace(record, value=record.value[: len(record.value) // 2])


def make_oversized(record: OutboundRecord, max_bytes: int) -> OutboundRecord:
    """Valid JSON padded past the size limit."""
    padding = b" " * max(0, max_bytes + 1 - len(record.value))
    return dataclasses.replace(record, value=record.value + padding)


def key_as_another(
    record: OutboundRecord,
    header: RoutingHeader,
    body: Body,
    *,
    sender: PrivateIdentity,
    directory: Directory,
    key: bytes,
    random_bytes: RandomBytes = os.urandom,
) -> OutboundRecord:
    """Seal and key the record under ``key`` (another bureau's code): validly signed, but not
    keyed by its sender, as a misconfigured gateway or one posing as another might send it."""
    sealed = seal(
        header,
        body,
        sender=sender,
        directory=directory,
        topic=record.topic,
        key=key,
        random_bytes=random_bytes,
    )
    return dataclasses.replace(record, key=key, value=sealed.to_bytes())
