"""``i247 keys tls`` (a local CA and broker certificates) and ``i247 acls`` (the ACL set).

``agents.cli`` registers both with ``register_access``; each sets its ``handler``.

    i247 keys tls [--dir DIR] [--host kafka-1 ...] [--kafka] [--overwrite]
    i247 acls [--bootstrap-server HOST:PORT] [--command-config FILE] [--simulator]
    i247 acls --apply [--simulator]       # as a super user, on I247_BOOTSTRAP
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

from brokers.access import client_security
from brokers.acls import acl_set, apply_acls, kafka_acls_commands, principal
from brokers.settings import Settings
from brokers.tls_keyring import make_tls_dir, write_kafka_secrets
from schemas.participants import HUB_SITES, hub_id
from schemas.registry import default_registry

__all__ = ["COMPOSE_PRINCIPALS", "register_access"]

COMPOSE_PRINCIPALS = (
    *(principal(hub_id(site)).removeprefix("User:") for site in HUB_SITES),
    "archiver",
    "operator",
    "simulator",
)
"""The principals compose's services connect as (each gets a password file)."""


def _keys_tls(args: argparse.Namespace, settings: Settings) -> int:
    directory: Path = args.dir or settings.keys_dir / "tls"
    files = make_tls_dir(
        directory, hosts=args.host or (), now=datetime.now(UTC), overwrite=args.overwrite
    )
    print(f"CA {files.ca} (its key {files.ca_key} stays here), broker {files.cert}")
    if args.kafka:
        passwords = write_kafka_secrets(files, COMPOSE_PRINCIPALS)
        print(f"Kafka keystore, JAAS file and {len(passwords)} password files in {directory}")
    return 0


def _acls(args: argparse.Namespace, settings: Settings) -> int:
    grants = acl_set(
        settings.topics,
        ncbs=default_registry().codes(),
        sites=HUB_SITES,
        simulator=args.simulator,
    )
    if args.apply:
        if not settings.bootstrap:
            raise SystemExit("i247 acls --apply needs I247_BOOTSTRAP (the cluster to grant on)")
        created = asyncio.run(
            apply_acls(settings.bootstrap, grants, security=client_security(settings))
        )
        print(f"{created} ACLs granted on {settings.bootstrap}")
        return 0
    bootstrap = args.bootstrap_server or settings.bootstrap or "localhost:9092"
    config = args.command_config
    for line in kafka_acls_commands(grants, bootstrap=bootstrap, command_config=config):
        print(line)
    return 0


def register_access(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    key_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``keys tls`` and ``acls`` to the ``i247`` subcommands."""
    tls = key_commands.add_parser("tls", help="make a local CA and a broker certificate")
    tls.add_argument("--dir", type=Path, help="where to write (default <keys dir>/tls)")
    tls.add_argument("--host", action="append", help="a broker host name or address (repeatable)")
    tls.add_argument(
        "--kafka", action="store_true", help="also a keystore, JAAS file and passwords for Kafka"
    )
    tls.add_argument("--overwrite", action="store_true", help="replace the CA too")
    tls.set_defaults(handler=_keys_tls)

    acls = commands.add_parser("acls", help="print (or --apply) the cluster's ACLs")
    acls.add_argument("--apply", action="store_true", help="create them on I247_BOOTSTRAP")
    acls.add_argument("--bootstrap-server", help="for the printed kafka-acls.sh commands")
    acls.add_argument("--command-config", help="client config file for kafka-acls.sh")
    acls.add_argument(
        "--simulator", action="store_true", help="grant the traffic generator's principal too"
    )
    acls.set_defaults(handler=_acls)
