"""A CCC hub as a faust worker: leases, intake and delivery run by ``HubRuntime``.

Each hub is its own faust app (``<prefix>-ccc-<site>``) and its own process. Ownership of
intake and of each lane comes from leases on the lease journal, not from consumer-group
membership (on the embedded broker a join alone takes half the session timeout), so the
units run on group-less consumers inside ``HubRuntime``, started and stopped with the
app. faust carries the rest: the worker's life cycle and signals, the timers (heartbeat,
handling clocks, statistics) and one stream agent, which applies acknowledgements that
other hubs relay on the journal for clocks this hub holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import structlog
from faust.types.auth import CredentialsT
from mode import Service

from brokers.access import client_security
from brokers.settings import Settings
from schemas.leases import fence_headers
from streams.hub_runtime import HubRuntime
from streams.hub_state import HubState, journal_record
from streams.transport import LowLatencyApp

__all__ = ["build_hub_app"]

log = structlog.get_logger("i247.hub")


def _faust_credentials(settings: Settings) -> CredentialsT | None:
    """faust's form of ``brokers.access.client_security`` (None: plaintext)."""
    options = client_security(settings)
    if options["security_protocol"] == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    if options["security_protocol"] == "SASL_SSL":
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options["ssl_context"],
            mechanism=options["sasl_mechanism"],
        )
    return None


def build_hub_app(state: HubState) -> tuple[LowLatencyApp, HubRuntime]:
    """The faust app of one hub and its runtime; run the app with ``faust.Worker``."""
    settings = state.settings
    topics = settings.topics
    datadir = Path(settings.data_dir).resolve() / "faust" / f"{topics.prefix}-ccc-{state.site}"
    app = LowLatencyApp(
        f"{topics.prefix}-ccc-{state.site}",
        broker=[f"kafka://{host}" for host in state.bootstrap.split(",")],
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        broker_request_timeout=max(30.0, 2 * settings.session_timeout_ms / 1000),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="latest",
        producer_acks=-1,
        producer_max_request_size=2 * settings.max_message_bytes,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=1,
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        stream_wait_empty=False,
        autodiscover=False,
        broker_credentials=_faust_credentials(settings),
    )
    datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    runtime = HubRuntime(state)

    class Runtime(Service):
        """Starts the runtime with the app and, on SIGTERM, hands its leases on."""

        async def on_start(self) -> None:
            await runtime.start()

        async def on_stop(self) -> None:
            await runtime.stop()

    app.service(Runtime)

    control = app.topic(
        topics.control,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(control, name="relayed-acknowledgements")
    async def relayed(stream: Any) -> AsyncIterator[None]:
        async for value in stream:
            try:
                event = json.loads(value)
            except ValueError:
                continue
            relayed_here = (
                isinstance(event, dict)
                and event.get("event") == "acknowledged"
                and event.get("hub") != state.hub
            )
            if relayed_here:
                state.clocks.acknowledge(
                    str(event.get("message_id")), str(event.get("recipient")), state.clock()
                )
            yield None

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def clocks_due() -> None:
        for breach in state.clocks.due(state.clock()):
            out = journal_record(
                state, "handling-breach", breach.message_id, breach.model_dump(mode="json")
            )
            await runtime.producer.send(
                out.topic, out.value, key=out.key, headers=list(out.headers)
            )
            state.counts["breaches"] += 1
            log.warning(
                "handling-breach", message_id=breach.message_id, precedence=breach.precedence.value
            )

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def desk_due() -> None:
        tag = runtime.tick_tag()
        if tag is None:  # holding no unit, this hub may not speak for the CCC: wait
            return
        for out in runtime.desk.tick(state.clock()):
            headers = fence_headers(out.headers, tag)
            await runtime.producer.send(out.topic, out.value, key=out.key, headers=list(headers))

    @app.timer(settings.lease_ttl_ms / 3000)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        await runtime.beat()

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info(
            "hub-stats",
            hub=state.hub,
            units=sorted(runtime.workers),
            **dict(state.counts),
            open_clocks=state.clocks.open_count,
        )

    return app, runtime
