"""``I247_CONNECT_VIA``: reach the broker's advertised addresses through other addresses.

A Kafka client bootstraps, then connects to whatever address each broker advertises, so
pointing a process at a proxy or a tunnel needs more than a bootstrap address. This maps
advertised ``host:port`` pairs to the ``host:port`` to dial instead, for every connection
the process's aiokafka clients open:

    I247_CONNECT_VIA="127.0.0.1:9092=127.0.0.1:40001,kafka-2:9092=127.0.0.1:40002"

The partition test uses it to put a TCP proxy between one hub and the broker; an operator
can use it for an SSH tunnel. Unmapped addresses are dialled as advertised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import structlog

__all__ = ["InvalidConnectVia", "install_connect_via", "parse_connect_via"]

log = structlog.get_logger("i247.brokers")


class InvalidConnectVia(ValueError):
    """``I247_CONNECT_VIA`` is not a comma-separated list of ``host:port=host:port``."""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidConnectVia(
            f"{text!r} is not host:port; write I247_CONNECT_VIA as "
            "advertised-host:port=dial-host:port[,...]"
        )
    return host, int(port)


def parse_connect_via(text: str) -> dict[tuple[str, int], tuple[str, int]]:
    """The mapping from ``I247_CONNECT_VIA``; empty text means no mapping."""
    mapping: dict[tuple[str, int], tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        advertised, sep, dial = item.partition("=")
        if not sep:
            raise InvalidConnectVia(f"{item!r} has no '='; expected advertised=dial")
        mapping[_address(advertised)] = _address(dial)
    return mapping


def install_connect_via(environ: Mapping[str, str] | None = None) -> int:
    """Patch aiokafka's connection factory with the mapping; return how many entries.

    Installing twice patches once: the second call replaces the mapping.
    """
    env = os.environ if environ is None else environ
    mapping = parse_connect_via(env.get("I247_CONNECT_VIA", ""))
    _MAPPING.clear()
    _MAPPING.update(mapping)
    if not mapping:
        return 0
    import aiokafka.client

    if getattr(aiokafka.client.create_conn, "_i247_connect_via", False):
        return len(mapping)  # installed before (the CLI, then the hub): the mapping is updated
    original = aiokafka.client.create_conn

    async def create_conn(host: str, port: int, **kwargs: Any) -> Any:
        dial_host, dial_port = _MAPPING.get((host, port), (host, port))
        return await original(dial_host, dial_port, **kwargs)

    create_conn._i247_connect_via = True  # type: ignore[attr-defined]
    aiokafka.client.create_conn = create_conn
    log.info("connect-via", entries=len(mapping))
    return len(mapping)


_MAPPING: dict[tuple[str, int], tuple[str, int]] = {}
