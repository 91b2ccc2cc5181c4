"""Three hubs as separate processes: duty, failover, fencing and failback on a real broker.

Every test runs the three CCC hubs as their own processes, sends steady traffic between
NCBs, disturbs the hub on duty (SIGSTOP, SIGKILL, a cut link, shift changes), and then
reads every inbox from the start, fence-checked against the lease journal as any bureau
would: each accepted message must be opened exactly once by each of its recipients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.ncb.adapter import Duplicate, Fenced, Opened, Unopened
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import MessageType
from schemas.keys import Directory, PrivateIdentity
from schemas.leases import LeaseBook, fence_tag
from schemas.participants import HUB_SITES
from streams.core.roster import DutyRoster
from tests.integration.harness import Backbone, now, running
from tests.integration.tcp_proxy import TcpProxy

TTL_MS = 2000
BODY = MessageBody(subject="Fugitive sighted", text="Seen boarding a ferry at 14:05")
CODES = ["DEU", "ITA", "ESP", "NLD", "BEL", "AUT"]
MESSAGE_TYPE = b"int.interpol.i247.message.v1"


@contextlib.asynccontextmanager
async def three_hubs(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
    *,
    shift_seconds: float = 3600.0,
    extra_env: dict[str, dict[str, str]] | None = None,
) -> AsyncIterator[Backbone]:
    async with running(
        settings,
        keys_dir,
        keyring,
        tmp_path,
        start_hub=False,
        lease_ttl_ms=TTL_MS,
        shift_seconds=shift_seconds,
    ) as bb:
        for site in HUB_SITES:
            bb.start_hub(site, **(extra_env or {}).get(site, {}))
        for site in HUB_SITES:
            await bb.wait_ready(site)
        yield bb


async def traffic(
    bb: Backbone, seconds: float, events: dict[float, Callable[[], Any]], pace: float = 0.04
) -> Counter[str]:
    """Send one message every ``pace`` s for ``seconds``; run ``events`` at their times."""
    sent: Counter[str] = Counter()
    pending = sorted(events.items())
    start = time.monotonic()
    round_ = 0
    while (elapsed := time.monotonic() - start) < seconds:
        while pending and pending[0][0] <= elapsed:
            result = pending.pop(0)[1]()
            if asyncio.iscoroutine(result):
                await result
        sender = CODES[round_ % len(CODES)]
        recipient = CODES[(round_ + 1) % len(CODES)]
        header, record = bb.adapter(sender).compose(
            [recipient], BODY, now=now(), random_bytes=os.urandom
        )
        sent[f"{header.message_id}/{recipient}"] += 1
        await bb.send(record)
        round_ += 1
        await asyncio.sleep(pace)
    return sent


async def delivered_exactly_once(bb: Backbone, sent: Counter[str]) -> Counter[str]:
    """Read every inbox; assert each sent pair was opened once; return what else was seen."""
    inboxes = await bb.inboxes(
        CODES,
        until=lambda rs: (
            len({(r.topic, r.key) for r in rs if r.header("ce_type") == MESSAGE_TYPE}) >= len(sent)
        ),
        timeout=120,
    )
    opened = Counter(
        f"{i.header.message_id}/{code}"
        for code in CODES
        for i in inboxes[code]
        if isinstance(i, Opened) and i.header.message_type is MessageType.MESSAGE
    )
    items = [i for code in CODES for i in inboxes[code]]
    assert not [i for i in items if isinstance(i, Unopened)]
    missing = set(sent) - set(opened)
    assert not missing, f"{len(missing)} of {len(sent)} pairs never opened"
    assert opened == sent
    dups = {i.message_id for i in items if isinstance(i, Duplicate)}
    if dups:  # say which copies, under which terms, the fence let through twice
        records = await bb.read_all([bb.settings.topics.inbox(c) for c in CODES])
        book = await bb.lease_book()
        for r in records:
            if r.key and r.key.decode() in dups:
                tag = fence_tag(r.headers)
                term = book.lease(tag.unit).term(tag.epoch) if tag else None
                print(
                    "DUP",
                    r.topic,
                    r.offset,
                    r.key,
                    tag,
                    term and (term.owner, term.start, term.end),
                    r.header("i247-origin"),
                )
    assert not dups, "a message was accepted twice"
    return Counter(type(i).__name__ for i in items)


def one_owner_per_epoch(events: list[dict[str, Any]], book: LeaseBook) -> None:
    claims: dict[tuple[str, int], set[str]] = {}
    for event in events:
        if event.get("event") == "lease-claimed":
            claims.setdefault((event["unit"], event["epoch"]), set()).add(event["hub"])
    assert claims, "no lease was ever claimed"
    for (unit, epoch), hubs in claims.items():
        assert len(hubs) == 1, f"{unit}@{epoch} claimed by {hubs}"
        term = book.lease(unit).term(epoch)
        assert term is not None
        assert f"hub:{term.owner}" in hubs


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_a_stopped_hub_is_fenced_when_it_wakes_and_the_journal_has_one_owner_per_epoch(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with three_hubs(settings, keys_dir, keyring, tmp_path) as bb:
        victim = DutyRoster(shift_seconds=3600.0).hub_on_duty(now())
        successor = DutyRoster.successor(victim)
        sent = await traffic(
            bb,
            14.0,
            {
                3.0: lambda: bb.signal_hub(victim, signal.SIGSTOP),
                3.0 + 3 * TTL_MS / 1000 + 1: lambda: bb.signal_hub(victim, signal.SIGCONT),
            },
        )
        seen = await delivered_exactly_once(bb, sent)
        events = await bb.journal()
        book = await bb.lease_book()
    one_owner_per_epoch(events, book)
    failovers = [
        e
        for e in events
        if e.get("event") == "lease-claimed"
        and e.get("reason") == "failover"
        and e.get("previous_owner") == victim
    ]
    assert failovers
    assert {e["hub"] for e in failovers} == {f"hub:{successor}"}
    assert any(e.get("event") == "lease-lost" and e.get("hub") == f"hub:{victim}" for e in events)
    # whatever the woken hub delivered under a term that had ended was refused by the NCBs
    print(f"inbox items: {dict(seen)}")


async def test_killing_the_hub_on_duty_moves_its_work_to_the_successor_with_nothing_lost(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with three_hubs(settings, keys_dir, keyring, tmp_path) as bb:
        victim = DutyRoster(shift_seconds=3600.0).hub_on_duty(now())
        successor = DutyRoster.successor(victim)
        killed_at: list[float] = []

        def kill() -> None:
            killed_at.append(time.time())
            bb.kill_hub(victim)

        sent = await traffic(bb, 16.0, {3.0: kill, 10.0: lambda: bb.start_hub(victim)})
        await delivered_exactly_once(bb, sent)

        def failed_back(events: list[dict[str, Any]]) -> bool:
            return any(
                e.get("event") == "lease-claimed"
                and e.get("reason") == "failback"
                and e.get("hub") == f"hub:{victim}"
                for e in events
            )

        # the restarted hub takes its work back once it has started and beaten twice: on a
        # loaded machine that can come after the traffic ends, so wait for it (no timing)
        events = await bb.journal(until=failed_back, timeout=60)
        book = await bb.lease_book()
    one_owner_per_epoch(events, book)
    takeovers = [
        e
        for e in events
        if e.get("event") == "first-output"
        and e.get("reason") == "failover"
        and e.get("previous_owner") == victim
    ]
    assert takeovers, "the successor never delivered the failed hub's work"
    assert {e["hub"] for e in takeovers} == {f"hub:{successor}"}
    first = min(at(e["at"]) for e in takeovers) - killed_at[0]
    bound = 2 * TTL_MS / 1000 + 5  # documented in docs/failover.md, with slack for CI
    print(f"successor's first delivery {first:.2f} s after the kill (bound {bound} s)")
    assert first < bound
    assert failed_back(events), "the restarted hub never took its work back"


async def test_a_hub_cut_off_from_the_broker_is_replaced_and_delivers_nothing_stale(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    bootstrap = settings.bootstrap
    assert bootstrap
    assert "," not in bootstrap
    host, _, port = bootstrap.rpartition(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    victim = DutyRoster(shift_seconds=3600.0).hub_on_duty(now())
    via = {victim: {"I247_CONNECT_VIA": f"{host}:{port}=127.0.0.1:{proxy.port}"}}
    try:
        async with three_hubs(settings, keys_dir, keyring, tmp_path, extra_env=via) as bb:
            sent = await traffic(
                bb, 16.0, {3.0: proxy.cut, 3.0 + 3 * TTL_MS / 1000 + 1: proxy.restore}
            )
            seen = await delivered_exactly_once(bb, sent)
            events = await bb.journal()
            book = await bb.lease_book()
    finally:
        await proxy.stop()
    one_owner_per_epoch(events, book)
    assert any(
        e.get("event") == "lease-claimed"
        and e.get("reason") == "failover"
        and e.get("previous_owner") == victim
        for e in events
    )
    print(f"inbox items: {dict(seen)}")


async def test_two_shift_changes_under_traffic_lose_and_double_nothing(
    settings: Settings,
    keys_dir: Path,
    keyring: tuple[Directory, dict[str, PrivateIdentity]],
    tmp_path: Path,
) -> None:
    async with three_hubs(settings, keys_dir, keyring, tmp_path, shift_seconds=5.0) as bb:
        sent = await traffic(bb, 14.0, {})
        seen = await delivered_exactly_once(bb, sent)
        events = await bb.journal()
        book = await bb.lease_book()
    one_owner_per_epoch(events, book)
    handovers = [
        e
        for e in events
        if e.get("event") == "lease-claimed"
        and e.get("unit") == "intake"
        and e.get("reason") == "duty-handover"
    ]
    assert len(handovers) >= 2, f"only {len(handovers)} duty handovers journaled"
    assert seen.get(Fenced.__name__, 0) == 0  # planned handovers release where they stop
