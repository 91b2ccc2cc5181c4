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

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any

from brokers.settings import Settings

__all__ = ["BrokerAccessError", "client_security", "process_security", "trusting"]


class BrokerAccessError(RuntimeError):
    """TLS or SASL is selected but cannot be set up; the message says which file or setting."""


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
