"""``i247 hub --site S``: one CCC hub as its own process (a plain asyncio service)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from brokers.connect_via import install_connect_via
from brokers.logs import configure_logging
from brokers.settings import Settings
from brokers.tracing import start_tracing
from schemas.keys import load_directory, load_identity
from schemas.participants import hub_id
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState
from streams.hub.memory_census import InvalidCensusInterval, census_interval
from streams.hub.service import HubService

__all__ = ["run_hub"]


def run_hub(settings: Settings, site: str) -> int:
    """Run until SIGTERM/SIGINT. Needs ``I247_BOOTSTRAP``: a hub never starts a broker."""
    log_path = os.environ.get("I247_LOG_FILE")
    configure_logging(settings.log_level, Path(log_path) if log_path else None)
    install_connect_via()
    if not settings.bootstrap:
        raise SystemExit("i247 hub needs I247_BOOTSTRAP (the demo sets it for the hubs it starts)")
    try:
        census_interval()  # refused here, before the hub takes any work
    except InvalidCensusInterval as error:
        raise SystemExit(str(error)) from error
    keys_dir = Path(settings.keys_dir)
    directory = load_directory(keys_dir)
    tracing = start_tracing(settings, f"i247-{hub_id(site).replace(':', '-')}")
    state = HubState(
        settings=settings,
        site=site,
        bootstrap=settings.bootstrap,
        directory=directory,
        identity=load_identity(keys_dir, hub_id(site)),
        roster=DutyRoster(shift_seconds=settings.shift_seconds),
        tracer=tracing.tracer,
    )
    structlog.get_logger("i247.hub").info(
        "hub-starting", hub=state.hub, bootstrap=settings.bootstrap
    )
    try:
        asyncio.run(_serve(state))
    finally:
        tracing.shutdown()  # export the spans still buffered
    return 0


async def _serve(state: HubState) -> None:
    await HubService(state).run()
