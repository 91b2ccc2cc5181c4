"""One hub's part in the three-hub CCC: hold leases, run the units it holds, journal moves.

Theory of operation
-------------------
Every hub follows two journals from their start with ``TopicTail``: the lease journal
(folded into a ``LeaseBook``) and the heartbeats (folded into one ``HubView`` per other
hub, with this hub's receive time). Several times a second ``coordinate`` asks the pure
core who should own each unit (``streams.duty.desired_owners``) and what to write
(``plan_leases``), writes it, and starts or stops ``UnitWorker``s to match the book: a
claim only counts once it has been read back from the journal as accepted. Every claim,
release, loss and liveness change is journaled on ``i247.control`` with its timings.

A third tail follows the lanes and dead letters to keep the replay memory
(``SeenMessages``) current, so whichever hub takes intake knows what was admitted before,
whoever admitted it, and which inputs each intake term wrote out (``IntakeProgress``: a
claim after an unreleased term starts at the first input it left without an output).

A fourth follows the control topic from its start and folds the team events into
``teams`` (``streams.team_registry.TeamRegistry``): deployments, revocations, and the
public keys of teams, which join this hub's directory as they are learned. The team desk
(``streams.team_desk``) handles team traffic to ``ccc``; intake refuses traffic for a
closed team (``recipient-revoked``).

Graceful stop (SIGTERM): stop the workers, release every lease with final positions, and
send a leaving heartbeat, so successors take over at once instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from brokers.clients import BACKGROUND_FETCH_WAIT_MS, make_producer
from brokers.provisioning import provision
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import TopicTail
from schemas.errors import RejectedMessage
from schemas.header import format_timestamp
from schemas.leases import (
    Claim,
    FenceTag,
    FenceVerdict,
    LeaseBook,
    LeaseEvent,
    LeaseRecord,
    LeaseRefused,
    Release,
    Renew,
    fence_tag,
    judge,
)
from schemas.participants import HUB_SITES
from schemas.sealing import open_sealed, parse_envelope
from schemas.topics import TopicKind, TopicSpec
from streams.ccc_desk import CccDesk
from streams.check_desk import CheckDesk
from streams.databases import Databases, open_configured
from streams.databases.nominal import NominalIndex
from streams.delivery import DeliveryLedger, plan_delivery, receipt_records
from streams.duty import (
    INTAKE,
    ClaimReason,
    Intent,
    claim_reason,
    desired_owners,
    plan_leases,
)
from streams.hub_state import HubState, dead_letter, journal_record
from streams.intake import Admitted, Redelivered, Refused, admit
from streams.intake_progress import IntakeProgress
from streams.liveness import Heartbeat, HubView, Liveness, LivenessPolicy, assess, observe
from streams.nominal_feed import NominalFeed
from streams.notice_desk import NoticeDesk
from streams.replay_memory import remember_lane_record
from streams.team_desk import TeamDesk, keyring_issuer
from streams.team_registry import TeamRegistry
from streams.unit_workers import UnitWorker, WorkerContext, upstream_verdict
from streams.vehicle_desk import VehicleDesk

__all__ = ["HubRuntime"]

log = structlog.get_logger("i247.hub")

TICK = 0.2  # seconds between coordination passes


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


class HubRuntime:
    """Leases, workers and journal of one hub process."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        settings = state.settings
        self.topics = settings.topics
        self.me = state.site
        self.ttl = timedelta(milliseconds=settings.lease_ttl_ms)
        self.renew_every = self.ttl / 3
        self.policy = LivenessPolicy(timeout=self.ttl, revive_after=2)
        self.book = LeaseBook.empty()
        self.views: dict[str, HubView] = {}
        self.declared: dict[str, Liveness] = {}
        self.dead_since: dict[str, datetime] = {}
        self.workers: dict[str, UnitWorker] = {}
        self.last_renewed: dict[str, datetime] = {}
        self.claims: dict[tuple[str, int], dict[str, Any]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._journals_tail: TopicTail | None = None
        self._lanes_tail: TopicTail | None = None
        self._history_read = False
        self._started_at: datetime | None = None
        self._sequence = 0
        self.incarnation = state.random_bytes(8).hex()
        self._loop: asyncio.Task[None] | None = None
        self._ready = False
        self.desk = CccDesk()
        self.intake_progress = IntakeProgress()  # which inputs each intake term wrote out
        self.teams = TeamRegistry()
        self.team_desk = TeamDesk(
            state,
            self.teams,
            keyring_issuer(Path(settings.keys_dir)),
            acting=lambda: INTAKE in self.workers,
        )
        self.desk.register(self.team_desk)
        self._control_tail: TopicTail | None = None
        self.nominal = NominalIndex()
        self.nominal_feed = NominalFeed(
            self.nominal,
            identity=state.identity,
            directory=state.directory,
            max_bytes=settings.max_message_bytes,
        )
        self._notices_tail: TopicTail | None = None
        self.databases: Databases | None = None
        self.notice_desk = NoticeDesk.from_state(
            state,
            on_duty=self._on_intake_duty,
            teams=lambda: self.teams.teams_in_scope(self.state.clock()),
        )
        self.desk.register(self.notice_desk)
        self.desk.register(VehicleDesk(state, self.teams))

    # --- life cycle ---------------------------------------------------------------

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the hub runtime is not started")
        return self._producer

    @property
    def _journals(self) -> TopicTail:
        assert self._journals_tail is not None, "the hub runtime is not started"
        return self._journals_tail

    @property
    def _lanes(self) -> TopicTail:
        assert self._lanes_tail is not None, "the hub runtime is not started"
        return self._lanes_tail

    async def start(self) -> None:
        """Connect, read the journals' history, and begin coordinating (needs a loop)."""
        bootstrap = self.state.bootstrap
        self._producer = make_producer(bootstrap, self.state.settings)
        self._journals_tail = TopicTail(
            bootstrap, [self.topics.leases, self.topics.heartbeat], self._on_journal
        )
        self._lanes_tail = TopicTail(
            bootstrap,
            [*self.topics.lanes(), self.topics.deadletter],
            self._on_lane_record,
            fetch_max_wait_ms=BACKGROUND_FETCH_WAIT_MS,
        )
        self._control_tail = TopicTail(bootstrap, [self.topics.control], self._on_control)
        await self.producer.start()
        await self._journals.start()
        await self._lanes.start()
        await self._control_tail.start()
        await self._open_checks()
        await self._journals.catch_up()
        await self._control_tail.catch_up()  # teams known before this hub takes any work
        self._history_read = True  # beats read so far are history, not signs of life
        self._started_at = self.state.clock()
        await self.beat()
        self._loop = asyncio.create_task(self._coordinate_forever(), name="coordinate")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        now = self.state.clock()
        for unit, worker in list(self.workers.items()):
            final = await worker.stop()
            await self._write(Release(unit, self.me, worker.epoch, now, final))
            await self._journal(
                "lease-released",
                unit,
                {"unit": unit, "epoch": worker.epoch, "reason": "shutdown", "positions": final},
            )
        self.workers.clear()
        await self.beat(leaving=True)
        await self.producer.flush()
        await self._lanes.stop()
        if self._control_tail is not None:
            await self._control_tail.stop()
        await self._journals.stop()
        if self._notices_tail is not None:
            await self._notices_tail.stop()
        if self.databases is not None:
            self.databases.close()
        await self.producer.stop()

    async def _open_checks(self) -> None:
        """Open the databases (built once per data dir), fold the notices topic into the
        nominal index and keep following it, and register the checks desk."""
        self.databases = await asyncio.to_thread(open_configured, self.state.settings, self.nominal)
        self._notices_tail = TopicTail(
            self.state.bootstrap,
            [self.topics.notices],
            lambda record: self._on_notice(record),
            fetch_max_wait_ms=BACKGROUND_FETCH_WAIT_MS,
        )
        await self._notices_tail.start()
        await self._notices_tail.catch_up()
        self.desk.register(CheckDesk(self.state, self.databases))
        log.info(
            "checks-desk-open",
            hub=self.state.hub,
            sltd=len(self.databases.sltd),
            smv=len(self.databases.smv),
            works_of_art=len(self.databases.works_of_art),
            wanted_persons=len(self.nominal),
        )

    def _on_notice(self, record: ReceivedRecord) -> None:
        """One write to the compacted notices topic, by any hub: the notices desk's state
        and the nominal index both follow it."""
        self.notice_desk.restore(record)
        outcome = self.nominal_feed.apply(record, self.state.clock())
        log.debug("notice-folded", offset=record.offset, outcome=outcome.value)

    async def _coordinate_forever(self) -> None:
        while True:
            try:
                await self.coordinate()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not end the hub's duty
                log.exception("coordination-failed", hub=self.state.hub)
            await asyncio.sleep(TICK)

    # --- journals -----------------------------------------------------------------

    def _on_journal(self, record: ReceivedRecord) -> None:
        if record.topic == self.topics.leases:
            event = LeaseRecord.model_validate_json(record.value).event()
            try:
                self.book = self.book.apply(event)
            except LeaseRefused as refusal:
                log.info(
                    "lease-event-refused", unit=event.unit, site=event.site, detail=str(refusal)
                )
            return
        if not self._history_read:
            return
        beat = Heartbeat.model_validate_json(record.value)
        if beat.site != self.me:
            self.views[beat.site] = observe(
                self.views.get(beat.site), beat, self.state.clock(), self.policy
            )

    def _on_lane_record(self, record: ReceivedRecord) -> None:
        """A lane record or a dead letter: what intake admitted, and which inputs it wrote."""
        if record.topic != self.topics.deadletter:
            remember_lane_record(self.state.seen, record, now=self.state.clock())
        tag = fence_tag(record.headers)
        if tag is not None and tag.unit == INTAKE:
            self.intake_progress.record(tag.epoch, tag.partition, tag.offset)

    def _on_control(self, record: ReceivedRecord) -> None:
        if b'"diffusion-re' in record.value:  # recorded or recalled by any hub
            with contextlib.suppress(ValueError):
                self.notice_desk.fold_journal(json.loads(record.value))
        learned = self.teams.fold_record(record)
        if learned:
            self.state.directory = self.state.directory.with_identities(learned)
            for identity in learned:
                log.info("team-identity-learned", hub=self.state.hub, team=identity.participant)

    async def provision_team_inboxes(self) -> None:
        """Create the inboxes of teams the desk approved, before its outputs are produced."""
        inboxes = self.team_desk.take_new_inboxes()
        if inboxes:
            await provision(
                self.state.bootstrap,
                [TopicSpec(inbox, TopicKind.INBOX) for inbox in inboxes],
                self.state.settings.replication_factor,
            )

    async def _write(self, event: LeaseEvent, *, wait: bool = True) -> int | None:
        value = LeaseRecord.of(event).model_dump_json().encode()
        if not wait:
            await self.producer.send(self.topics.leases, value, key=event.unit.encode())
            return None
        meta = await self.producer.send_and_wait(self.topics.leases, value, key=event.unit.encode())
        return int(meta.offset)

    async def _journal(self, event: str, key: str, fields: dict[str, Any]) -> None:
        out = journal_record(self.state, event, key, fields)
        await self.producer.send_and_wait(
            out.topic, out.value, key=out.key, headers=list(out.headers)
        )
        log.info(event, hub=self.state.hub, **fields)

    async def beat(self, *, leaving: bool = False) -> None:
        beat = Heartbeat(
            site=self.me,
            sequence=self._sequence,
            sent_at=self.state.clock(),
            lanes=tuple(sorted(self.workers)),
            backlog=sum(worker.backlog() for worker in self.workers.values()),
            leaving=leaving,
            incarnation=self.incarnation,
        )
        self._sequence += 1
        await self.producer.send(
            self.topics.heartbeat, beat.model_dump_json().encode(), key=self.me.encode()
        )

    # --- decisions ----------------------------------------------------------------

    def tick_tag(self) -> FenceTag | None:
        """The fence tag for what the desks say on their own (timers): under intake if held,
        else under a held lane, at the worker's current position. A term that has ended
        ends at or before that position, so a stale hub's timer output is fenced too."""
        units = [INTAKE] if INTAKE in self.workers else sorted(self.workers)
        for unit in units:
            worker = self.workers[unit]
            if self.may_work(unit, worker.epoch):
                return FenceTag(unit, worker.epoch, 0, worker.positions.get(0, 0))
        return None

    def may_work(self, unit: str, epoch: int) -> bool:
        """Whether this hub's term ``epoch`` on ``unit`` is still good, by the book and clock."""
        lease = self.book.lease(unit)
        return (
            lease.owner == self.me
            and lease.epoch == epoch
            and lease.expires_at is not None
            and self.state.clock() < lease.expires_at
        )

    def _on_intake_duty(self) -> bool:
        """Whether this hub holds intake now: the one hub that runs the CCC's desk clocks."""
        return self.book.owner_at(INTAKE, self.state.clock()) == self.me

    def alive(self, now: datetime) -> set[str]:
        assert self._started_at is not None
        if now < self._started_at + self.ttl:  # not heard everyone yet: assume the best
            return set(HUB_SITES)
        others = {s for s in HUB_SITES if s != self.me}
        return {self.me} | {
            s for s in others if assess(self.views.get(s), now, self.policy) is Liveness.ALIVE
        }

    async def coordinate(self) -> None:
        now = self.state.clock()
        intake = self.book.lease(INTAKE)
        self.intake_progress.forget(intake.epoch, intake.positions)
        alive = self.alive(now)
        await self._note_liveness(alive, now)
        await self._drop_lost_units()
        wanted = desired_owners(topics=self.topics, roster=self.state.roster, now=now, alive=alive)
        claims: list[tuple[str, int, ClaimReason, dict[str, Any]]] = []
        last_offset = -1
        for move in plan_leases(
            me=self.me,
            book=self.book,
            wanted=wanted,
            now=now,
            last_renewed=self.last_renewed,
            renew_every=self.renew_every,
            running={unit: worker.epoch for unit, worker in self.workers.items()},
        ):
            unit = move.unit
            if move.intent is Intent.RENEW:
                worker = self.workers.get(unit)
                positions = worker.positions if worker else dict(self.book.lease(unit).positions)
                await self._write(
                    Renew(unit, self.me, move.epoch, now, self.ttl, positions), wait=False
                )
                self.last_renewed[unit] = now
            elif move.intent is Intent.RELEASE:
                worker = self.workers.pop(unit, None)
                final = await worker.stop() if worker else dict(self.book.lease(unit).positions)
                await self._write(Release(unit, self.me, move.epoch, self.state.clock(), final))
                await self._journal(
                    "lease-released",
                    unit,
                    {
                        "unit": unit,
                        "epoch": move.epoch,
                        "reason": "handover",
                        "handing_to": move.handing_to,
                        "positions": {str(p): o for p, o in final.items()},
                    },
                )
            else:
                reason = claim_reason(
                    unit,
                    me=self.me,
                    book=self.book,
                    topics=self.topics,
                    roster=self.state.roster,
                    now=now,
                )
                previous = self.book.lease(unit)
                prior_owner = previous.owner or (
                    previous.terms[-1].owner if previous.terms else None
                )
                view = self.views.get(prior_owner) if prior_owner else None
                seen: dict[int, int] = {}
                if unit == INTAKE and previous.owner is not None:
                    # an unreleased term: start at the first input it left without an output
                    await self._lanes.catch_up()
                    seen = self.intake_progress.resume_from(previous.epoch, previous.positions)
                offset = await self._write(Claim(unit, self.me, move.epoch, now, self.ttl, seen))
                last_offset = max(last_offset, offset or 0)
                claims.append(
                    (
                        unit,
                        move.epoch,
                        reason,
                        {
                            "previous_owner": prior_owner,
                            "previous_epoch": previous.epoch,
                            "last_heard": _iso(view.last_received if view else None),
                            "detected_at": _iso(self.dead_since.get(prior_owner or "")),
                            "lease_expired_at": _iso(previous.expires_at),
                            "claimed_at": _iso(now),
                        },
                    )
                )
        if claims:
            await asyncio.wait_for(self._journals.wait_past(self.topics.leases, last_offset), 30)
            for unit, epoch, reason, timing in claims:
                await self._take(unit, epoch, reason, timing)
        if not self._ready:
            self._ready = True
            await self._journal("hub-ready", self.state.hub, {"units": sorted(self.workers)})

    async def _note_liveness(self, alive: set[str], now: datetime) -> None:
        for site in HUB_SITES:
            if site == self.me:
                continue
            state = Liveness.ALIVE if site in alive else Liveness.DEAD
            if self.declared.get(site, Liveness.ALIVE) is state:
                continue
            self.declared[site] = state
            view = self.views.get(site)
            if state is Liveness.DEAD:
                self.dead_since[site] = now
            await self._journal(
                f"hub-{state.value}",
                site,
                {
                    "site": site,
                    "last_heard": _iso(view.last_received if view else None),
                    "declared_at": _iso(now),
                },
            )

    async def _drop_lost_units(self) -> None:
        for unit, worker in list(self.workers.items()):
            lease = self.book.lease(unit)
            if (lease.owner, lease.epoch) == (self.me, worker.epoch) and not worker.done:
                continue
            del self.workers[unit]
            positions = await worker.stop(grace=0)
            if (lease.owner, lease.epoch) == (self.me, worker.epoch):  # crashed: same term again
                log.warning("unit-worker-restarted", unit=unit, epoch=worker.epoch)
                await self._start_worker(unit, worker.epoch, positions)
                continue
            await self._journal(
                "lease-lost",
                unit,
                {
                    "unit": unit,
                    "epoch": worker.epoch,
                    "now_owner": lease.owner,
                    "now_epoch": lease.epoch,
                },
            )

    async def _take(
        self, unit: str, epoch: int, reason: ClaimReason, timing: dict[str, Any]
    ) -> None:
        lease = self.book.lease(unit)
        if (lease.owner, lease.epoch) != (self.me, epoch):
            log.info(
                "claim-lost", unit=unit, epoch=epoch, owner=lease.owner, owner_epoch=lease.epoch
            )
            return
        confirmed = self.state.clock()
        self.last_renewed[unit] = confirmed
        start = dict(lease.positions)
        fields = {
            "unit": unit,
            "epoch": epoch,
            "reason": reason.value,
            **timing,
            "confirmed_at": _iso(confirmed),
            "start": {str(p): o for p, o in start.items()},
        }
        self.claims[(unit, epoch)] = fields
        await self._start_worker(unit, epoch, start)
        await self._journal("lease-claimed", unit, fields)

    async def _start_worker(self, unit: str, epoch: int, start: dict[int, int]) -> None:
        context = WorkerContext(
            bootstrap=self.state.bootstrap,
            new_producer=lambda: make_producer(self.state.bootstrap, self.state.settings),
            may_work=self.may_work,
            fetch_max_wait_ms=self.state.settings.fetch_max_wait_ms,
            max_fetch_bytes=2 * self.state.settings.max_message_bytes,
            on_first_output=self._first_output,
            clock=self.state.clock,
            ack_timeout=self.ttl.total_seconds(),
        )
        if unit == INTAKE:
            await self._lanes.catch_up()  # know everything admitted before this term
            worker = UnitWorker(context, unit, self.topics.inbound, epoch, start, self._intake)
        else:
            worker = UnitWorker(context, unit, unit, epoch, start, LaneDelivery(self).handle)
        await worker.start()
        self.workers[unit] = worker

    async def _first_output(self, unit: str, epoch: int, at: datetime) -> None:
        claim = self.claims.get((unit, epoch), {})
        await self._journal(
            "first-output",
            unit,
            {
                "unit": unit,
                "epoch": epoch,
                "reason": claim.get("reason"),
                "previous_owner": claim.get("previous_owner"),
                "last_heard": claim.get("last_heard"),
                "claimed_at": claim.get("claimed_at"),
                "at": _iso(at),
            },
        )

    # --- the work -----------------------------------------------------------------

    async def _intake(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        state = self.state
        outcome = admit(
            record,
            now=state.clock(),
            directory=state.directory,
            seen=state.seen,
            roster=state.roster,
            topics=self.topics,
            policy=state.policy,
            route_to=self.me,
            revocations=self.teams.roster,
        )
        if isinstance(outcome, Admitted):
            state.counts["admitted"] += 1
            log.debug(
                "admitted",
                message_id=outcome.header.message_id,
                trace_id=outcome.header.trace_id,
                lane=outcome.lane.topic,
                rule=outcome.assessment.rule,
            )
            return [outcome.lane]
        if isinstance(outcome, Refused):
            state.counts[f"refused.{outcome.reason.value}"] += 1
            log.info(
                "refused",
                message_id=outcome.message_id,
                reason=outcome.reason.value,
                detail=outcome.detail,
                origin=record.origin,
            )
            return [dead_letter(record, outcome, self.topics.deadletter, f"{state.hub}/intake")]
        assert isinstance(outcome, Redelivered)
        state.counts["readmitted"] += 1
        return [outcome.again.lane]

    def desk_handle(self, record: ReceivedRecord, now: datetime) -> list[OutboundRecord]:
        """Open a message to ``ccc`` with this hub's key and let the desk act on it."""
        state = self.state
        try:
            sealed = parse_envelope(record.value, max_bytes=state.settings.max_message_bytes)
            opened = open_sealed(
                sealed,
                topic=(record.header("i247-sealed-topic") or b"").decode(),
                key=record.header("i247-sealed-key") or b"",
                directory=state.directory,
                identity=state.identity,
            )
        except RejectedMessage as refusal:  # intake verified it: this is a hub-side fault
            log.error(
                "desk-cannot-open", lane=record.topic, offset=record.offset, detail=str(refusal)
            )
            return []
        return self.desk.handle(opened, record, now)

    async def judge_upstream(self, tag: FenceTag) -> FenceVerdict:
        """Judge an input's fence tag; an epoch not folded yet is waited for (its claim was
        written before any output under it), and one that never comes is fenced."""
        verdict = judge(self.book, tag.unit, tag.epoch, tag.partition, tag.offset)
        if verdict is FenceVerdict.UNKNOWN:
            await self._journals.wait_until(
                lambda: self.book.lease(tag.unit).epoch >= tag.epoch, timeout=30
            )
            verdict = judge(self.book, tag.unit, tag.epoch, tag.partition, tag.offset)
        return FenceVerdict.FENCED if verdict is FenceVerdict.UNKNOWN else verdict


class LaneDelivery:
    """Delivery from one lane for one term, with a ledger of its own."""

    def __init__(self, runtime: HubRuntime) -> None:
        self.runtime = runtime
        self.ledger = DeliveryLedger()

    async def handle(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        runtime = self.runtime
        state = runtime.state
        tag, verdict = upstream_verdict(record, lambda t: FenceVerdict.UNKNOWN)
        if tag is not None and tag.unit == INTAKE:
            verdict = await runtime.judge_upstream(tag)
        if tag is None or tag.unit != INTAKE or verdict is not FenceVerdict.ACCEPT:
            state.counts["fenced-input"] += 1
            log.info("fenced-input", lane=record.topic, offset=record.offset, tag=str(tag))
            return []
        now = state.clock()
        plan = plan_delivery(
            record,
            hub=state.hub,
            topics=runtime.topics,
            ledger=self.ledger,
            max_bytes=state.settings.max_message_bytes,
        )
        if plan.clocked_recipients:  # before delivering, so an ack can never arrive first
            state.clocks.start(
                plan.header.message_id, plan.clocked_recipients, plan.precedence, now
            )
        outputs = list(plan.inbox)
        outputs += receipt_records(
            plan.receipts, hub=state.identity, topics=runtime.topics, now=now
        )
        if plan.to_ccc:
            outputs += runtime.desk_handle(record, now)
            await runtime.provision_team_inboxes()
        if plan.acknowledge:
            ack = plan.acknowledge
            if state.clocks.holds(ack.message_id):
                state.clocks.acknowledge(ack.message_id, ack.recipient, now)
            else:  # the clock runs at the hub that delivered the message: tell the others
                outputs.append(
                    journal_record(
                        state,
                        "acknowledged",
                        ack.message_id,
                        {"message_id": ack.message_id, "recipient": ack.recipient},
                    )
                )
        state.counts["delivered"] += len(plan.inbox)
        state.counts["ccc"] += int(plan.to_ccc)
        state.counts["duplicates"] += len(plan.duplicates)
        log.debug(
            "delivered",
            message_id=plan.header.message_id,
            trace_id=plan.header.trace_id,
            precedence=plan.precedence.value,
            recipients=len(plan.inbox),
            epoch=epoch,
        )
        return outputs
