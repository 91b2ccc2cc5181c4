"""The simulator's team traffic against the real team desk, in a closed loop without a broker."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

from agents.ncb.adapter import NcbAdapter
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.settings import Settings
from schemas.sealing import open_sealed, parse_envelope
from schemas.team_journal import team_counts
from streams.core.roster import DutyRoster
from streams.desks.hub_state import HubState
from streams.desks.shell import DeskShell
from streams.desks.team_desk import TeamDesk, keyring_issuer
from streams.desks.team_registry import TeamRegistry
from tests.unit.keyring import NCBS, small_keyring
from tests.unit.team_factories import NOW


def received(record: OutboundRecord) -> ReceivedRecord:
    return ReceivedRecord(record.topic, 0, 0, 0, record.key, record.value, record.headers)


def test_requests_reports_and_closings_run_a_full_cycle_with_no_refusal(tmp_path: Path) -> None:
    from agents.sim.team_traffic import TeamTraffic

    directory, ids = small_keyring()
    keys = tmp_path / "keys"
    settings = Settings(data_dir=tmp_path, keys_dir=keys, clock_scale=43_200.0)
    clock = [NOW]
    state = HubState(
        settings=settings,
        site="lyon",
        bootstrap="localhost:9092",
        directory=directory,
        identity=ids["hub:lyon"],
        roster=DutyRoster(),
        clock=lambda: clock[0],
    )
    desk = DeskShell(state)
    desk.register(TeamDesk(TeamRegistry(), keyring_issuer(keys)))
    adapters = {c: NcbAdapter(ids[c], directory, settings.topics) for c in NCBS}
    traffic = TeamTraffic(adapters, keys, settings.topics, random.Random(7), request_every=5.0)
    journal: list[dict[str, object]] = []

    for second in range(120):
        now = clock[0] = NOW + timedelta(seconds=second)
        outputs = list(desk.tick(now))
        for record in traffic.step(now):
            message = open_sealed(
                parse_envelope(record.value, max_bytes=1 << 20),
                topic=settings.topics.inbound,
                key=record.key or b"",
                directory=state.directory,
                identity=ids["hub:lyon"],
            )
            outputs += desk.handle(message, now)
        for out in outputs:
            if out.topic == settings.topics.control:
                journal.append(json.loads(out.value))
                traffic.on_control(received(out))

    counts = team_counts(journal)
    assert counts["approved"] >= 2
    assert counts["closed"] >= 1
    assert counts["reports"] >= 4
    assert counts["refused"] == 0  # every report came in phase order, from a landed team
    assert counts["requested"] == traffic.sent["team-request"]
    closed_dvi = [
        d for d in traffic.registry.deployments() if d.state.value == "closed" and d.dvi_complete
    ]
    assert all(len(d.dvi_complete) == 4 for d in closed_dvi)
    learned = {i.participant for i in traffic.registry.identities()}
    assert learned
    assert all(t in adapters["FRA"].directory for t in learned)
