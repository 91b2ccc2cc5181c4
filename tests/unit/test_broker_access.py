"""Broker access without a broker: the gate's SASL state machine, certificates, client options.

The SASL exchange is driven by aiokafka's own request structs and SCRAM client, so what
passes here is what aiokafka sends on the wire.
"""

from __future__ import annotations

import ssl
import stat
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiokafka.conn import ScramAuthenticator
from aiokafka.protocol.admin import (
    ApiVersionRequest_v0,
    SaslAuthenticateRequest_v0,
    SaslAuthenticateRequest_v1,
    SaslAuthenticateResponse_v0,
    SaslAuthenticateResponse_v1,
    SaslHandShakeRequest_v1,
    SaslHandShakeResponse_v1,
)
from aiokafka.protocol.api import ResponseHeader_v0
from aiokafka.protocol.metadata import MetadataRequest_v1
from cryptography import x509
from pydantic import SecretStr

from brokers.access import BrokerAccessError, client_security
from brokers.embedded import EmbeddedBrokerError, access_for
from brokers.sasl_gate import MECHANISMS, Answer, Forward, GateSession, Refuse
from brokers.settings import Settings, SettingsError
from brokers.tls_keyring import make_tls_dir

USERS = {"ncb-FRA": "s3cret, with = signs"}
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def frame(request: Any, correlation: int = 7) -> bytes:
    header = request.build_request_header(correlation_id=correlation, client_id="test")
    return bytes(header.encode() + request.encode())


def answer(action: object, response_type: Any) -> Any:
    assert isinstance(action, Answer), action
    buffer = BytesIO(action.frame)
    ResponseHeader_v0.decode(buffer)
    return response_type.decode(buffer)


def authenticate(
    session: GateSession, mechanism: str, user: str, password: str, version: int = 1
) -> object:
    """Run aiokafka's client side against ``session``; return the last action."""
    shake = answer(
        session.on_frame(frame(SaslHandShakeRequest_v1(mechanism))), SaslHandShakeResponse_v1
    )
    assert shake.error_code == 0
    request = SaslAuthenticateRequest_v1 if version else SaslAuthenticateRequest_v0
    response = SaslAuthenticateResponse_v1 if version else SaslAuthenticateResponse_v0
    if mechanism == "PLAIN":
        return session.on_frame(frame(request(f"\0{user}\0{password}".encode())))
    client = ScramAuthenticator(
        loop=None, sasl_plain_password=password, sasl_plain_username=user, sasl_mechanism=mechanism
    )
    token, _ = client._step(None)
    action = session.on_frame(frame(request(token)))
    server_first = answer(action, response).sasl_auth_bytes
    token, _ = client._step(server_first)
    action = session.on_frame(frame(request(token)))
    if isinstance(action, Answer):
        assert client._step(answer(action, response).sasl_auth_bytes) is None  # server proven
    return action


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("version", [0, 1])
def test_a_known_user_with_the_right_password_is_let_through(mechanism: str, version: int) -> None:
    session = GateSession(USERS)
    assert isinstance(session.on_frame(frame(ApiVersionRequest_v0())), Forward)
    action = authenticate(session, mechanism, "ncb-FRA", USERS["ncb-FRA"], version)
    assert isinstance(action, Answer)
    assert session.principal == "ncb-FRA"
    metadata = frame(MetadataRequest_v1(topics=None))
    assert session.on_frame(metadata) == Forward(metadata)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize(
    ("user", "password"), [("ncb-FRA", "guess"), ("ncb-DEU", USERS["ncb-FRA"]), ("", "")]
)
def test_a_wrong_password_or_unknown_user_is_refused_with_error_58(
    mechanism: str, user: str, password: str
) -> None:
    session = GateSession(USERS)
    action = authenticate(session, mechanism, user, password)
    assert isinstance(action, Refuse)
    assert action.answer is not None
    buffer = BytesIO(action.answer)
    ResponseHeader_v0.decode(buffer)
    response = SaslAuthenticateResponse_v1.decode(buffer)
    assert response.error_code == 58
    assert "wrong user or password" in response.error_message
    assert not session.authenticated


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (MetadataRequest_v1(topics=None), "before SASL authentication"),
        (SaslAuthenticateRequest_v1(b"\0x\0y"), "before SaslHandshake"),
        (SaslHandShakeRequest_v1("GSSAPI"), "is not offered"),
    ],
)
def test_anything_but_the_sasl_exchange_before_authenticating_closes_the_connection(
    request_: Any, reason: str
) -> None:
    action = GateSession(USERS).on_frame(frame(request_))
    assert isinstance(action, Refuse)
    assert reason in action.reason


def test_garbage_is_refused() -> None:
    assert isinstance(GateSession(USERS).on_frame(b"\x00"), Refuse)


def test_the_tls_dir_has_a_ca_and_a_broker_certificate_it_signed(tmp_path: Path) -> None:
    files = make_tls_dir(tmp_path / "tls", hosts=["kafka-1"], now=NOW)
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"kafka-1", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for private in (files.ca_key, files.key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    again = make_tls_dir(tmp_path / "tls", now=NOW)  # the CA is kept, the leaf renewed
    assert again.ca.read_bytes() == files.ca.read_bytes()
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(again.cert), str(again.key))


def test_client_options_follow_the_security_setting(tmp_path: Path) -> None:
    assert client_security(Settings()) == {"security_protocol": "PLAINTEXT"}
    make_tls_dir(tmp_path / "keys" / "tls", now=NOW)
    tls = Settings(keys_dir=tmp_path / "keys", security="tls")
    options = client_security(tls)
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname
    sasl = tls.model_copy(
        update={
            "security": "sasl_tls",
            "sasl_username": "hub-lyon",
            "sasl_password": SecretStr("hunter2-secret"),
        }
    )
    assert client_security(sasl) | {"ssl_context": None} == {
        "security_protocol": "SASL_SSL",
        "ssl_context": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "hub-lyon",
        "sasl_plain_password": "hunter2-secret",
    }
    assert access_for(sasl) is not None
    assert "hunter2" not in repr(sasl)


def test_missing_files_and_credentials_are_named(tmp_path: Path) -> None:
    nothing = Settings(keys_dir=tmp_path, security="tls")
    with pytest.raises(BrokerAccessError, match="i247 keys tls"):
        client_security(nothing)
    with pytest.raises(EmbeddedBrokerError, match=r"broker\.pem does not exist"):
        access_for(nothing)
    with pytest.raises(SettingsError, match="I247_SASL_USERNAME"):
        Settings.from_env({"I247_SECURITY": "sasl_tls"})
    with pytest.raises(SettingsError, match="I247_SECURITY"):
        Settings.from_env({"I247_SECURITY": "ssl"})
