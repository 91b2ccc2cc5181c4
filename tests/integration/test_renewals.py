"""Lease renewals run on a task of their own: a slow batch never makes a lease lapse.

A batch can be in hand for seconds (a handler waiting for the journal), and a coordination
pass can wait for it (a release waits for the batch in hand). Renewals must go on
meanwhile, or the lease lapses and another hub takes the unit over for nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.header import Precedence
from schemas.keys import Directory, PrivateIdentity
from schemas.leases import LeaseRecord, Renew
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState
from streams.hub.runtime import HubRuntime
from tests.integration.harness import running

TTL_MS = 1500
STALL_TTLS = 3


async def test_renewals_go_on_while_a_batch_and_coordination_wait(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running(
        settings, keys_dir, keyring, tmp_path, start_hub=False, lease_ttl_ms=TTL_MS
    ) as rig:
        directory, identities = keyring
        state = HubState(
            settings=rig.settings,
            site="lyon",
            bootstrap=rig.bootstrap,
            directory=directory,
            identity=identities["hub:lyon"],
            roster=DutyRoster(),
        )
        runtime = HubRuntime(state)
        await runtime.start()
        try:
            lane = rig.settings.topics.lane("lyon", Precedence.ROUTINE)
            for _ in range(1200):  # claimed within a minute, however loaded the machine
                if lane in runtime.workers:
                    break
                await asyncio.sleep(0.05)
            term = runtime.workers[lane]
            released = asyncio.Event()
            in_hand = asyncio.Event()
            handle = term.handle

            async def slow(record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
                in_hand.set()
                await released.wait()
                return await handle(record, epoch)

            async def waiting_pass() -> None:  # as a release waiting for the batch in hand
                await released.wait()

            term.handle = slow
            monkeypatch.setattr(runtime, "coordinate", waiting_pass)
            await rig.send(OutboundRecord(lane, b"x", b"not a lane record"))
            async with asyncio.timeout(60):
                await in_hand.wait()
            held = {unit: t.epoch for unit, t in runtime.workers.items()}
            stalled_at = state.clock()
            await asyncio.sleep(STALL_TTLS * TTL_MS / 1000)
            stalled_until = state.clock()
            released.set()

            renewals: Counter[str] = Counter()
            for record in await rig.read_all([rig.settings.topics.leases]):
                event = LeaseRecord.model_validate_json(record.value).event()
                if (
                    isinstance(event, Renew)
                    and event.site == "lyon"
                    and stalled_at <= event.at <= stalled_until
                ):
                    renewals[event.unit] += 1
            # renewed every TTL/3: a lease that lapsed would have gone a whole TTL without one
            assert {unit: renewals[unit] >= STALL_TTLS for unit in held} == dict.fromkeys(
                held, True
            )
            assert {u: t.epoch for u, t in runtime.workers.items()} == held
        finally:
            await runtime.stop()
