"""A local certificate authority and broker certificates for TLS (``i247 keys tls``).

``make_tls_dir`` writes, into one directory:

* ``ca.pem`` (the CA certificate every client trusts, ``I247_TLS_CA``) and ``ca.key``
  (its private key, mode 0600: it never leaves this directory; only this command reads it);
* ``broker.pem`` and ``broker.key`` (0600): a server certificate for the given host names
  and addresses (``localhost``, ``127.0.0.1`` and ``::1`` always), signed by the CA, for the
  embedded broker (``I247_TLS_CERT``/``I247_TLS_KEY``) or a Kafka cluster's listeners.

With ``--kafka``, ``write_kafka_secrets`` adds what compose's Kafka cluster needs (a PKCS#12
keystore, the brokers' JAAS file, one password file per principal, a SCRAM setup script).
Those files are readable by every container that mounts the volume: a demo's secrets store,
not a production one.

ECDSA P-256 keys, SHA-256 signatures; ``now`` is passed in so tests pin validity.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_HOSTS",
    "TlsFiles",
    "issue_server_certificate",
    "make_authority",
    "make_tls_dir",
    "write_kafka_secrets",
]

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
SERVER_DAYS = 825


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where ``make_tls_dir`` put each file."""

    ca: Path
    ca_key: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "I-24/7 backbone"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_authority(
    now: datetime, common_name: str = "I-24/7 local CA"
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_server_certificate(
    authority: x509.Certificate,
    authority_key: ec.EllipticCurvePrivateKey,
    hosts: Iterable[str],
    now: datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate for ``hosts`` (DNS names or IP addresses), signed by the CA."""
    names = list(dict.fromkeys(hosts))
    if not names:
        raise ValueError("a server certificate needs at least one host name or address")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )
    return certificate, key


def _write(path: Path, data: bytes, *, private: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    if private:
        path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_authority(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    authority = x509.load_pem_x509_certificate(files.ca.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.ca_key} is not an EC private key")
    return authority, key


def make_tls_dir(
    directory: Path, *, hosts: Iterable[str] = (), now: datetime, overwrite: bool = False
) -> TlsFiles:
    """Write a CA (kept if present, unless ``overwrite``) and a fresh broker certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        directory / "ca.pem",
        directory / "ca.key",
        directory / "broker.pem",
        directory / "broker.key",
    )
    if files.ca.exists() and files.ca_key.exists() and not overwrite:
        authority, authority_key = _load_authority(files)
    else:
        authority, authority_key = make_authority(now)
        _write(files.ca_key, _key_pem(authority_key), private=True)
        _write(files.ca, authority.public_bytes(serialization.Encoding.PEM), private=False)
    certificate, key = issue_server_certificate(
        authority, authority_key, [*hosts, *DEFAULT_HOSTS], now
    )
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, certificate.public_bytes(serialization.Encoding.PEM), private=False)
    return files


KAFKA_ADMIN = "admin"


def _password(random_bytes: Callable[[int], bytes]) -> str:
    return base64.urlsafe_b64encode(random_bytes(24)).decode().rstrip("=")


def write_kafka_secrets(
    files: TlsFiles,
    principals: Iterable[str],
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> dict[str, Path]:
    """What a SASL_SSL Kafka cluster and its clients need, beside ``files`` (compose's volume).

    Writes ``broker.p12`` (key, certificate and CA, PKCS#12) and ``broker.p12.creds`` (its
    password), ``kafka_server_jaas.conf`` (the ``admin`` super user, PLAIN, for the brokers
    and controllers among themselves and for setup), ``admin.properties`` (a Java client
    config as admin), ``passwords/<principal>`` for ``admin`` and every principal, and
    ``scram-users.sh``, which creates each principal's SCRAM-SHA-512 credential with
    ``kafka-configs.sh``. Existing passwords are kept, so reruns change nothing for clients.
    Returns the password file of each principal.
    """
    directory = files.ca.parent
    secrets = directory / "passwords"
    secrets.mkdir(exist_ok=True)
    passwords: dict[str, Path] = {}
    for name in [KAFKA_ADMIN, *principals]:
        path = secrets / name
        if not path.exists():
            _write(path, _password(random_bytes).encode(), private=False)
        passwords[name] = path
    admin = passwords[KAFKA_ADMIN].read_text().strip()
    store_password = _password(random_bytes)
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.key} is not an EC private key")
    bundle = pkcs12.serialize_key_and_certificates(
        b"broker",
        key,
        x509.load_pem_x509_certificate(files.cert.read_bytes()),
        [x509.load_pem_x509_certificate(files.ca.read_bytes())],
        serialization.BestAvailableEncryption(store_password.encode()),
    )
    _write(directory / "broker.p12", bundle, private=False)
    _write(directory / "broker.p12.creds", store_password.encode(), private=False)
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    jaas = (
        f'KafkaServer {{\n  {plain}\n  username="{KAFKA_ADMIN}"\n  password="{admin}"\n'
        f'  user_{KAFKA_ADMIN}="{admin}";\n'
        "  org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\n"
    )
    _write(directory / "kafka_server_jaas.conf", jaas.encode(), private=False)
    properties = (
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        f'sasl.jaas.config={plain} username="{KAFKA_ADMIN}" password="{admin}";\n'
        "ssl.truststore.type=PEM\nssl.truststore.location=/etc/kafka/secrets/ca.pem\n"
    )
    _write(directory / "admin.properties", properties.encode(), private=False)
    lines = ["#!/bin/sh", "# written by `i247 keys tls --kafka`: SCRAM credentials", "set -e"]
    for name, path in passwords.items():
        if name == KAFKA_ADMIN:
            continue
        secret = path.read_text().strip()
        lines.append(
            '/opt/kafka/bin/kafka-configs.sh --bootstrap-server "$1" '
            "--command-config /etc/kafka/secrets/admin.properties --alter "
            f"--add-config 'SCRAM-SHA-512=[password={secret}]' "
            f"--entity-type users --entity-name {name}"
        )
    _write(directory / "scram-users.sh", ("\n".join(lines) + "\n").encode(), private=False)
    return passwords
