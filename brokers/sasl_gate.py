"""SASL in front of the embedded broker, as a pure per-connection state machine.

Why: the bundled Tansu 0.6.0 cannot authenticate anyone on its memory storage (its
``--authentication`` needs SCRAM users, and creating one is itself refused as
``NotAuthenticated``), and it cannot serve TLS (``--cert`` and ``--key`` are mutually
exclusive on its command line; either alone leaves the listener in plaintext). So
``brokers.gate`` terminates TLS and runs SASL itself, then pipes bytes to Tansu on a
loopback port. This module decides, frame by frame, what the gate does with what a client
sends before it has authenticated:

* ``ApiVersions`` (key 18) is forwarded (clients ask before choosing SASL versions);
* ``SaslHandshake`` (17, v1) and ``SaslAuthenticate`` (36, v0/v1) are answered here:
  ``PLAIN``, ``SCRAM-SHA-256`` and ``SCRAM-SHA-512`` (RFC 5802/7677) against ``users``;
* anything else is refused: the gate closes the connection, as Kafka does.

Once authenticated, every frame is forwarded. ``frame`` means a request without its
4-byte size prefix; answers are returned the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["MECHANISMS", "Answer", "Forward", "GateSession", "Refuse", "scram_credential"]

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 4096
_HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Forward:
    """Pass the frame on to the broker."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """Send this response frame back to the client; nothing reaches the broker."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Refuse:
    """Close the connection; ``answer`` (if any) goes to the client first."""

    reason: str
    answer: bytes | None = None


Action = Forward | Answer | Refuse


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes


def scram_credential(mechanism: str, password: str, salt: bytes) -> ScramCredential:
    """StoredKey and ServerKey of RFC 5802 for ``password`` (what a server keeps)."""
    digest = _HASHES[mechanism]
    salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", digest)
    return ScramCredential(
        salt, digest(client_key).digest(), hmac.digest(salted, b"Server Key", digest)
    )


def _string(data: bytes, at: int) -> tuple[str | None, int]:
    (size,) = struct.unpack_from(">h", data, at)
    if size < 0:
        return None, at + 2
    return data[at + 2 : at + 2 + size].decode(), at + 2 + size


def _header(frame: bytes) -> tuple[int, int, int, int]:
    """api key, version, correlation id, and where the body starts (request header v1)."""
    api_key, version, correlation = struct.unpack_from(">hhi", frame, 0)
    _, body = _string(frame, 8)
    return api_key, version, correlation, body


def _handshake_response(correlation: int, error: int) -> bytes:
    names = b"".join(struct.pack(">h", len(m)) + m.encode() for m in MECHANISMS)
    return struct.pack(">ihi", correlation, error, len(MECHANISMS)) + names


def _authenticate_response(
    correlation: int, version: int, error: int, message: str | None, data: bytes
) -> bytes:
    text = b"\xff\xff" if message is None else struct.pack(">h", len(message)) + message.encode()
    out = struct.pack(">ih", correlation, error) + text + struct.pack(">i", len(data)) + data
    return out + (struct.pack(">q", 0) if version >= 1 else b"")


def _unquote(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")


class GateSession:
    """One client connection's SASL exchange; ``principal`` is set once it succeeded."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        random_bytes: RandomBytes = os.urandom,
        secret: bytes | None = None,
    ) -> None:
        self._users = dict(users)
        self._random = random_bytes
        self._secret = secret if secret is not None else random_bytes(32)
        self._mechanism: str | None = None
        self._scram: tuple[str, str, str, str] | None = None  # user, gs2, first bare, server first
        self.principal: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    def on_frame(self, frame: bytes) -> Action:
        """What to do with one request frame from the client."""
        if self.authenticated:
            return Forward(frame)
        try:
            api_key, version, correlation, body = _header(frame)
        except (struct.error, UnicodeDecodeError):
            return Refuse("an unreadable request header before authentication")
        if api_key == API_VERSIONS:
            return Forward(frame)
        if api_key == SASL_HANDSHAKE:
            return self._handshake(version, correlation, frame, body)
        if api_key == SASL_AUTHENTICATE:
            return self._authenticate(version, correlation, frame, body)
        return Refuse(
            f"request (API key {api_key}) before SASL authentication: this broker requires "
            "SASL over TLS (security_protocol=SASL_SSL with a username and password)"
        )

    def _handshake(self, version: int, correlation: int, frame: bytes, body: int) -> Action:
        if version != 1:
            return Refuse(f"SaslHandshake v{version}: only v1 (with SaslAuthenticate) is served")
        mechanism, _ = _string(frame, body)
        if mechanism not in MECHANISMS:
            answer = _handshake_response(correlation, UNSUPPORTED_SASL_MECHANISM)
            return Refuse(f"SASL mechanism {mechanism!r} is not offered", answer)
        self._mechanism = mechanism
        return Answer(_handshake_response(correlation, 0))

    def _fail(self, correlation: int, version: int, message: str) -> Refuse:
        answer = _authenticate_response(
            correlation, version, SASL_AUTHENTICATION_FAILED, message, b""
        )
        return Refuse(message, answer)

    def _authenticate(self, version: int, correlation: int, frame: bytes, body: int) -> Action:
        if version > 1:
            return Refuse(f"SaslAuthenticate v{version}: only v0 and v1 are served")
        if self._mechanism is None:
            answer = _authenticate_response(
                correlation, version, ILLEGAL_SASL_STATE, "SaslHandshake first", b""
            )
            return Refuse("SaslAuthenticate before SaslHandshake", answer)
        (size,) = struct.unpack_from(">i", frame, body)
        token = frame[body + 4 : body + 4 + max(size, 0)]
        if self._mechanism == "PLAIN":
            return self._plain(correlation, version, token)
        if self._scram is None:
            return self._scram_first(correlation, version, token)
        return self._scram_final(correlation, version, token)

    def _plain(self, correlation: int, version: int, token: bytes) -> Action:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            return self._fail(correlation, version, "a malformed SASL/PLAIN token")
        authzid, user, password = (p.decode(errors="replace") for p in parts)
        expected = self._users.get(user)
        ok = expected is not None and hmac.compare_digest(password.encode(), expected.encode())
        if not ok or authzid not in ("", user):
            return self._fail(
                correlation, version, f"authentication failed for {user!r}: wrong user or password"
            )
        self.principal = user
        return Answer(_authenticate_response(correlation, version, 0, None, b""))

    def _credential(self, user: str) -> ScramCredential:
        """The user's credential; an unknown user gets a stable fake one (no enumeration)."""
        assert self._mechanism is not None
        salt = hmac.digest(self._secret, f"{self._mechanism}\x00{user}".encode(), "sha256")[:16]
        password = self._users.get(user)
        if password is None:
            password = self._secret.hex()  # no one knows it: the proof cannot match
        return scram_credential(self._mechanism, password, salt)

    def _scram_first(self, correlation: int, version: int, token: bytes) -> Action:
        text = token.decode(errors="replace")
        gs2, _, bare = text.partition(",")
        authzid, _, bare = bare.partition(",")
        fields = dict(f.split("=", 1) for f in bare.split(",") if "=" in f)
        if gs2 not in ("n", "y") or "n" not in fields or "r" not in fields:
            return self._fail(correlation, version, "a malformed SCRAM client-first message")
        user = _unquote(fields["n"])
        if authzid not in ("", f"a={fields['n']}"):
            return self._fail(correlation, version, "SCRAM authorization id differs from user")
        nonce = fields["r"] + base64.b64encode(self._random(18)).decode()
        credential = self._credential(user)
        server_first = (
            f"r={nonce},s={base64.b64encode(credential.salt).decode()},i={SCRAM_ITERATIONS}"
        )
        self._scram = (user, f"{gs2},{authzid},", bare, server_first)
        return Answer(_authenticate_response(correlation, version, 0, None, server_first.encode()))

    def _scram_final(self, correlation: int, version: int, token: bytes) -> Action:
        assert self._scram is not None
        assert self._mechanism is not None
        user, gs2, first_bare, server_first = self._scram
        text = token.decode(errors="replace")
        without_proof, _, proof_field = text.rpartition(",p=")
        fields = dict(f.split("=", 1) for f in without_proof.split(",") if "=" in f)
        nonce = server_first.split(",")[0][2:]
        channel = base64.b64encode(gs2.encode()).decode()
        failed = f"authentication failed for {user!r}: wrong user or password"
        if fields.get("r") != nonce or fields.get("c") != channel or not proof_field:
            return self._fail(correlation, version, "a malformed SCRAM client-final message")
        try:
            proof = base64.b64decode(proof_field, validate=True)
        except ValueError:
            return self._fail(correlation, version, "a malformed SCRAM client proof")
        digest = _HASHES[self._mechanism]
        credential = self._credential(user)
        message = f"{first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(credential.stored_key, message, digest)
        if len(proof) != len(signature):
            return self._fail(correlation, version, failed)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if user not in self._users or not hmac.compare_digest(
            digest(client_key).digest(), credential.stored_key
        ):
            return self._fail(correlation, version, failed)
        verifier = hmac.digest(credential.server_key, message, digest)
        self.principal = user
        final = b"v=" + base64.b64encode(verifier)
        return Answer(_authenticate_response(correlation, version, 0, None, final))
