"""Broker access for clients: the aiokafka options that TLS and SASL settings call for.

Every Kafka client of the backbone (producers, consumers, tails, the admin client that
provisions topics) takes ``**client_security(settings)``, so one setting
(``I247_SECURITY``) moves the whole deployment between:

* ``plaintext``: no TLS, no authentication (the embedded broker's default, loopback only);
* ``tls``: TLS, the broker's certificate checked against ``I247_TLS_CA`` (host name too);
* ``sasl_tls``: the same, then SASL (``I247_SASL_MECHANISM``: ``PLAIN``, ``SCRAM-SHA-256``
  or ``SCRAM-SHA-512``) as ``I247_SASL_USERNAME``.

Code that holds only a bootstrap address (tails, readers deep in a shell) uses
``process_security()``: the same options from this process's environment, which every
process of a deployment is started with.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from brokers.settings import Settings

__all__ = [
    "BrokerAccessError",
    "BrokerAccessRefused",
    "access_refusal",
    "client_security",
    "process_security",
    "trusting",
]


class BrokerAccessError(RuntimeError):
    """TLS or SASL is selected but cannot be set up; the message says which file or setting."""


class BrokerAccessRefused(BrokerAccessError):
    """The broker answered but refused this client's TLS handshake or SASL credentials."""


@lru_cache(maxsize=8)
def _context(ca: Path, stamp: float) -> ssl.SSLContext:
    del stamp  # part of the cache key only: a rewritten CA file is loaded again
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def trusting(ca: Path) -> ssl.SSLContext:
    """A client TLS context that trusts ``ca`` alone and checks the broker's host name."""
    try:
        return _context(ca, ca.stat().st_mtime)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerAccessError(
            f"cannot load the CA certificate {ca} ({exc}); run `i247 keys tls` to make one "
            "or point I247_TLS_CA at the CA that signed the broker's certificate"
        ) from None


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka options (``security_protocol``, ``ssl_context``, ``sasl_*``) for ``settings``."""
    if settings.security == "plaintext":
        return {"security_protocol": "PLAINTEXT"}
    ca, _, _ = settings.tls_files
    options: dict[str, Any] = {"security_protocol": "SSL", "ssl_context": trusting(ca)}
    if settings.security == "sasl_tls":
        secret = settings.sasl_secret()
        if settings.sasl_username is None or secret is None:
            raise BrokerAccessError("I247_SECURITY=sasl_tls needs I247_SASL_USERNAME/PASSWORD")
        options.update(
            security_protocol="SASL_SSL",
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=secret,
        )
    return options


def process_security() -> dict[str, Any]:
    """``client_security`` of this process's ``I247_*`` environment."""
    return client_security(Settings.from_env())


async def access_refusal(
    bootstrap: str, options: Mapping[str, Any], *, timeout_s: float = 10.0
) -> str | None:
    """Why the first broker of ``bootstrap`` refuses a client with ``options``, or None.

    aiokafka reports a refused handshake or password only as "Unable to bootstrap"; this
    opens one connection the same way and names the cause: TLS (certificate, host name),
    SASL (mechanism, user or password), or a broker that wants SASL from a client without it.
    None when access is not the problem (plaintext, unreachable, or let in).
    """
    if options.get("security_protocol", "PLAINTEXT") == "PLAINTEXT":
        return None
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    user = options.get("sasl_plain_username")
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host.strip("[]"), int(port), request_timeout_ms=int(timeout_s * 1000), **options
            ),
            timeout_s,
        )
    except ssl.SSLCertVerificationError as exc:
        return (
            f"TLS with {bootstrap} failed: {exc.verify_message}; check that I247_TLS_CA is the "
            "CA that signed the broker's certificate and that it names this host"
        )
    except ssl.SSLError as exc:
        return f"TLS with {bootstrap} failed ({exc.reason}); is the broker's listener TLS?"
    except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
        return f"{bootstrap} refused SASL {options.get('sasl_mechanism')} as {user!r}: {exc}"
    except (KafkaError, OSError, TimeoutError):
        return None  # not an access problem: the caller reports the broker unreachable
    try:
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    except (KafkaConnectionError, OSError, TimeoutError):
        if options["security_protocol"] == "SSL":
            return (
                f"{bootstrap} closed the connection after TLS: it requires SASL; set "
                "I247_SECURITY=sasl_tls with I247_SASL_USERNAME and I247_SASL_PASSWORD"
            )
        return None
    finally:
        conn.close()
    return None
