"""A local certificate authority and broker certificates for TLS (``i247 keys tls``).

``make_tls_dir`` writes, into one directory:

* ``ca.pem`` (the CA certificate every client trusts, ``I247_TLS_CA``) and ``ca.key``
  (its private key, mode 0600: it never leaves this directory; only this command reads it);
* ``broker.pem`` and ``broker.key`` (0600): a server certificate for the given host names
  and addresses (``localhost``, ``127.0.0.1`` and ``::1`` always), signed by the CA, for the
  embedded broker (``I247_TLS_CERT``/``I247_TLS_KEY``) or a Kafka cluster's listeners.

ECDSA P-256 keys, SHA-256 signatures; ``now`` is passed in so tests pin validity.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_HOSTS",
    "TlsFiles",
    "issue_server_certificate",
    "make_authority",
    "make_tls_dir",
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
