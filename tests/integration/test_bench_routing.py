"""The routing and idle parts of the bench end to end at a tiny size, on the session's
broker: every message is routed (inbox and receipt) with a rate, a ratio and the hub's CPU;
the idle part names the broker and each backbone process with a CPU figure (behaviour, not
speed: no figure is compared with a target)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.bench.idle import GATEWAY, bench_idle
from agents.bench.routing import ROUTE_CALLS, client_costs, routing_saturation, step_costs
from agents.bench.suite import GOAL_RATIO, baseline, routing_json
from agents.ncb.adapter import NcbAdapter
from agents.ops.keyring import load_all
from brokers.settings import Settings
from schemas.participants import HUB_SITES
from schemas.registry import default_registry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_routing_saturation_counts_inbox_and_receipt_and_reports_rate_ratio_and_cpu(
    settings: Settings,
) -> None:
    codes = list(default_registry().codes())
    directory, identities = load_all(Path(settings.keys_dir), codes)
    adapters = {c: NcbAdapter(identities[c], directory, settings.topics) for c in codes}
    bootstrap = settings.bootstrap or ""
    run_dir = Path(settings.data_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)

    routed = await routing_saturation(bootstrap, settings, adapters, 200, run_dir)
    assert (routed.messages, routed.delivered, routed.routed) == (200, 200, 200)
    assert routed.receipt_records >= 1
    assert routed.receipts_by in ("ids", "records")  # ids: each receipt names its message
    assert routed.rate > 0
    # measured; it may round to 0 at this size if the hub did the work before the window
    assert routed.cpu_us_per_message is not None
    assert routed.cpu_us_per_message >= 0

    costs = step_costs(adapters, settings)
    costs.update(await client_costs(bootstrap, settings, b"x" * 2000, n=200))
    # enough records that the baseline's first and last arrive in different fetches (its rate
    # is measured from the first record received to the last)
    base = await baseline(bootstrap, settings, 3000, None, "t")
    assert base.messages == 3000
    figures = routing_json(base, routed, costs)
    assert figures["ratio_to_baseline"] > 0
    assert figures["goal_ratio"] == GOAL_RATIO
    assert figures["saturation"]["routed"] == 200
    steps = figures["breakdown_us_per_msg"]
    assert set(steps) == {*ROUTE_CALLS, "other/framework"}
    assert all(steps[step] >= 0 for step in ROUTE_CALLS)  # admit's rest may round to 0
    assert all(steps[step] > 0 for step in ("parse", "verify", "receipt", "produce", "consume"))
    assert sum(steps.values()) == pytest.approx(figures["hub_cpu_us_per_msg"], abs=1.0)


async def test_idle_names_the_broker_and_every_backbone_process_with_a_cpu_figure(
    settings: Settings,
) -> None:
    idle = await bench_idle(settings, seconds=2.0, settle=0.5)
    names = [p.name for p in idle.processes]
    assert names == ["broker", "archiver", *(f"hub {site}" for site in HUB_SITES), GATEWAY]
    for process in idle.processes:
        assert process.pid is not None, process.name
        assert process.cpu_percent is not None, process.name
        assert process.cpu_percent >= 0
    assert [p.name for p in idle.processes if not p.backbone] == [GATEWAY]
    report = idle.as_json()
    assert report["unmeasured"] == []
    assert report["total_percent"] >= report["backbone_total_percent"] >= 0
    assert len(report["processes"]) == 6


async def test_a_fixed_load_is_timed_after_a_probe_came_through_and_the_probe_is_not_counted(
    bootstrap: str, settings: Settings
) -> None:
    """The timed records start once the path is live; each is counted once, the probe never."""
    figures = await baseline(bootstrap, settings, 300, 500.0, "probe")
    assert figures.messages == 300
    # the probe is stamped at the epoch: counted, its "latency" would be 56 years
    assert max(figures.latencies_ms) < 3_600_000
