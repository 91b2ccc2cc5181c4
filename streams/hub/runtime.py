"""One hub's part in the three-hub CCC: hold leases, run the units it holds, journal moves.

Theory of operation
-------------------
Every hub follows its journals from their start with ONE ``TopicTail`` (one consumer,
its fetch wait adapting to the traffic), and folds each record by its topic:

* the lease journal, into a ``LeaseBook``; the heartbeats, into one ``HubView`` per other
  hub, with this hub's receive time. Several times a second ``coordinate`` asks the pure
  core who should own each unit (``streams.core.duty.desired_owners``) and what to write
  (``plan_leases``), writes it, and adds or removes terms of the ``WorkLoop`` (one
  consumer and one producer for every unit held) to match the book: a claim only counts
  once it has been read back from the journal as accepted. Renewals run on a task of
  their own (``renew_due``), so a pass that waits (a claim's read-back, a release waiting
  for the batch in hand) never lets a lease lapse. Every claim, release, loss and
  liveness change is journaled on ``i247.control`` with its timings;
* the lanes and dead letters, into the replay memory (``SeenMessages``), so whichever hub
  takes intake knows what was admitted before, whoever admitted it, and which inputs each
  intake term wrote out (``IntakeProgress``: a claim after an unreleased term starts at
  the first input it left without an output);
* the control topic, into ``teams`` (``streams.desks.team_registry.TeamRegistry``: deployments,
  revocations, and the public keys of teams, which join this hub's directory as they are
  learned), the diffusion ledger, and the desks' state (``streams.core.desk_state``: handling
  clocks, hit confirmations, multi-country windows, returned notice requests), whichever
  hub wrote them; only the hub holding intake acts on what they owe
  (``acting_for_desks``). The desks (``streams.desks.shell.DeskShell``: notices, diffusions,
  teams, vehicles, checks) handle traffic to ``ccc`` and say what to do as effects, which
  the shell seals; intake refuses traffic for a closed team (``recipient-revoked``);
* the compacted notices topic, into the notices desk and the nominal index;
* the compacted key directory (``i247.keys``), into a ``KeyDirectory`` laid over this
  hub's directory: a rotated key verifies until its grace deadline, a revoked one is
  refused at intake (``key-revoked``) as soon as this tail reads it (within the idle fetch
  wait and the tail's rest, half a second, well inside a lease TTL), and desks seal only
  for each participant's active key.

The life cycle is explicit (``streams.core.coordination.HubPhase``): starting, catching-up
(folding the journals' history), running, stopping, stopped; each pass of ``coordinate``
asks the pure ``step`` for its moves and carries them out. Graceful stop (SIGTERM): stop
the terms, release every lease with final positions, and send a leaving heartbeat, so
successors take over at once instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from aiokafka import AIOKafkaProducer

from brokers.clients import make_consumer, make_producer
from brokers.provisioning import provision
from brokers.records import OutboundRecord, ReceivedRecord
from brokers.tail import TopicTail
from schemas import header_names as names
from schemas.errors import RejectedMessage
from schemas.journal import (
    DiffusionRecalled,
    DiffusionRecorded,
    FirstOutput,
    HubAlive,
    HubDead,
    HubReady,
    JournalEventModel,
    LeaseClaimed,
    LeaseLost,
    LeaseReleased,
    MalformedJournalEvent,
    parse_desk_event,
)
from schemas.key_directory import KeyEntryRefused, key_directory_for
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
from schemas.registry import default_registry
from schemas.sealing import open_sealed, parse_envelope
from schemas.topics import TopicKind, TopicSpec
from streams.core.clocks import OBJECTIVES
from streams.core.coordination import (
    ClaimUnit,
    Declare,
    Drop,
    HubPhase,
    ReleaseUnit,
    RenewUnit,
    advance,
    intake_at_risk,
    intake_expected,
    pause_before_pass,
    step,
    units_awaited,
)
from streams.core.delivery import (
    ClockBatch,
    DeliveryLedger,
    ledger_horizon,
    plan_delivery,
    receipt_records,
)
from streams.core.duty import INTAKE, ClaimReason, due_for_renewal
from streams.core.intake import Admitted, Outcome, Redelivered, Refused, admit, unknown_signing_key
from streams.core.intake_progress import IntakeProgress
from streams.core.liveness import Heartbeat, HubView, Liveness, LivenessPolicy, observe
from streams.core.notice_lifecycle import NoticeLifecycle
from streams.databases import Databases, open_configured
from streams.databases.nominal import NominalIndex
from streams.desks.check_desk import CheckDesk
from streams.desks.diffusion_desk import DiffusionDesk
from streams.desks.hub_state import HubState, dead_letter, journal_event
from streams.desks.nominal_feed import NominalFeed
from streams.desks.notice_desk import NoticeDesk
from streams.desks.shell import DeskShell
from streams.desks.team_desk import TeamDesk, keyring_issuer
from streams.desks.team_registry import TeamRegistry
from streams.desks.vehicle_desk import VehicleDesk
from streams.hub.replay_memory import remember_lane_record
from streams.hub.tracing import traced_intake, traced_lane
from streams.hub.unit_workers import Term, WorkerContext, WorkLoop, upstream_verdict

__all__ = ["HubRuntime"]

log = structlog.get_logger("i247.hub")

TICK = 0.2  # seconds between coordination passes
JOURNAL_FETCH_WAIT_MS = 50
"""The journals' shortest fetch wait: no message waits on them in the steady state (a claim's
read-back, a heartbeat, a team's keys do), and the renewals every hub writes every TTL/3
would otherwise hold the tail near the 10 ms wait of the message path even when idle."""
JOURNAL_PACE_MS = 250
"""The journals' tail rests this long after an empty fetch (``brokers.fetch_wait.FetchPace``):
it names every journal and lane partition, which costs Tansu CPU per fetch; a claim's
read-back and a fence check wait on the tail, and waiting ends its rest at once."""
INTAKE_LEAD = timedelta(seconds=1)
"""How long before a handover that brings it on duty a hub's work loop fetches with the short
wait (``intake_expected``): longer than the idle wait plus a tick."""
STANDBY_IDLE_FETCH_WAIT_MS = 2_000
"""A hub without intake: its lanes get records only from its own intake, so its work loop may
wait this long while they are quiet; it braces (the short wait) before it may take intake."""
JOURNAL_BUSY_PACE_MS = 400
"""...and this long after a fetch that brought records: under traffic every fetch brings lane
records, and Tansu's CPU for such a fetch grows with the batches in the lanes (the replay
memory and the intake progress it feeds can be a fifth of a second behind)."""


@dataclass(frozen=True, slots=True)
class _ClaimTiming:
    """What a claim's journal entry says of the term before it (failover timing)."""

    previous_owner: str | None
    previous_epoch: int
    last_heard: datetime | None
    detected_at: datetime | None
    lease_expired_at: datetime | None
    claimed_at: datetime


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
        self.last_renewed: dict[str, datetime] = {}
        self.claims: dict[tuple[str, int], LeaseClaimed] = {}
        self.ledgers: dict[str, DeliveryLedger] = {}  # of the lanes held, for hub-stats
        self._producer: AIOKafkaProducer | None = None
        self._tail: TopicTail | None = None
        self._fold: dict[str, Callable[[ReceivedRecord], None]] = {}
        self._work: WorkLoop | None = None
        self._history_read = False
        self._started_at: datetime | None = None
        self._sequence = 0
        self.incarnation = state.random_bytes(8).hex()
        self._loop: asyncio.Task[None] | None = None
        self._renewals: asyncio.Task[None] | None = None
        self.phase = HubPhase.STARTING
        self._ready = False
        self.desk = DeskShell(state)  # the desks, and the one shell that seals what they say
        self.intake_progress = IntakeProgress()  # which inputs each intake term wrote out
        self.teams = TeamRegistry()
        self.keys = key_directory_for(state.directory)
        self.team_desk = TeamDesk(
            self.teams,
            keyring_issuer(Path(settings.keys_dir)),
            acting=lambda: INTAKE in self.workers,
        )
        self.desk.register(self.team_desk)
        self.nominal = NominalIndex()
        self.nominal_feed = NominalFeed(
            self.nominal,
            identity=state.identity,
            directory=state.directory,
            max_bytes=settings.max_message_bytes,
        )
        self.databases: Databases | None = None
        self.notice_desk = NoticeDesk(
            registry=default_registry(),
            lifecycle=NoticeLifecycle(scale=settings.calendar),
            open_stored=self.desk.open_stored,
            on_duty=self._on_intake_duty,
            teams=lambda: self.teams.teams_in_scope(self.state.clock()),
        )
        self.diffusion_desk = DiffusionDesk(default_registry())
        self.desk.register(self.notice_desk)
        self.desk.register(self.diffusion_desk)
        self.desk.register(VehicleDesk(self.teams))

    # --- life cycle ---------------------------------------------------------------

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the hub runtime is not started")
        return self._producer

    @property
    def _journals(self) -> TopicTail:
        assert self._tail is not None, "the hub runtime is not started"
        return self._tail

    @property
    def work(self) -> WorkLoop:
        assert self._work is not None, "the hub runtime is not started"
        return self._work

    @property
    def workers(self) -> dict[str, Term]:
        """The units this hub works now, each with its term (epoch, positions)."""
        return self._work.terms if self._work is not None else {}

    async def start(self) -> None:
        """Connect, read the journals' history, and begin coordinating (needs a loop)."""
        bootstrap = self.state.bootstrap
        settings = self.state.settings
        self._producer = make_producer(bootstrap, settings)
        self._fold = {
            self.topics.leases: self._on_journal,
            self.topics.heartbeat: self._on_journal,
            self.topics.control: self._on_control,
            self.topics.notices: self._on_notice,
            self.topics.keys: self._on_key_entry,
            self.topics.deadletter: self._on_lane_record,
            **dict.fromkeys(self.topics.lanes(), self._on_lane_record),
        }
        self._tail = TopicTail(
            bootstrap,
            list(self._fold),
            self._on_record,
            fetch_max_wait_ms=max(settings.fetch_max_wait_ms, JOURNAL_FETCH_WAIT_MS),
            idle_fetch_wait_ms=settings.idle_fetch_wait_ms,
            max_partition_fetch_bytes=2 * settings.max_message_bytes,
            pace_ms=JOURNAL_PACE_MS,
            busy_pace_ms=JOURNAL_BUSY_PACE_MS,
            waited_fetch_wait_ms=settings.fetch_max_wait_ms,
        )
        self._work = WorkLoop(
            WorkerContext(
                new_consumer=lambda: make_consumer(
                    bootstrap, settings, max_partition_fetch_bytes=2 * settings.max_message_bytes
                ),
                new_producer=lambda: make_producer(bootstrap, settings),
                may_work=self.may_work,
                on_first_output=self._first_output,
                clock=self.state.clock,
                ack_timeout=self.ttl.total_seconds(),
            )
        )
        await self.producer.start()
        await self._journals.start()
        await self.work.start()
        self._enter(HubPhase.CATCHING_UP)
        await self._open_checks()
        # leases, beats, teams and notices known before this hub takes any work
        await self._journals.catch_up()
        self._history_read = True  # beats read so far are history, not signs of life
        self._started_at = self.state.clock()
        await self.beat()
        self._enter(HubPhase.RUNNING)
        self._loop = asyncio.create_task(self._coordinate_forever(), name="coordinate")
        self._renewals = asyncio.create_task(self._renew_forever(), name="renewals")

    def _enter(self, phase: HubPhase) -> None:
        self.phase = advance(self.phase, phase)
        log.info("hub-phase", hub=self.state.hub, phase=phase.value)

    async def stop(self) -> None:
        """Hand every lease on with its final positions, say goodbye, disconnect."""
        if self.phase in (HubPhase.STOPPING, HubPhase.STOPPED):
            return
        connected = self.phase is not HubPhase.STARTING
        self._enter(HubPhase.STOPPING)
        if not connected:  # start failed before the journals: nothing to hand on
            for client in (self._work, self._tail, self._producer):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.stop()
            self._enter(HubPhase.STOPPED)
            return
        for task in (self._loop, self._renewals):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        now = self.state.clock()
        for unit, term in list(self.workers.items()):
            final = await self.work.remove(unit)
            self.ledgers.pop(unit, None)
            await self._write(Release(unit, self.me, term.epoch, now, final))
            await self._journal_event(
                LeaseReleased(
                    hub=self.state.hub,
                    time=self.state.clock(),
                    unit=unit,
                    epoch=term.epoch,
                    reason="shutdown",
                    positions=final,
                ),
                unit,
            )
        await self.beat(leaving=True)
        await self.producer.flush()
        await self.work.stop()
        await self._journals.stop()
        if self.databases is not None:
            self.databases.close()
        await self.producer.stop()
        self._enter(HubPhase.STOPPED)

    async def abandon(self) -> None:
        """The broker is out of reach or lost its log: drop every client without writing
        (no release, no goodbye: there is nowhere good to write them); the hub service
        starts a new runtime, with fresh terms, when the broker is usable again."""
        if self.phase in (HubPhase.STOPPING, HubPhase.STOPPED):
            return
        self._enter(HubPhase.STOPPING)
        for task in (self._loop, self._renewals):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for client in (self._work, self._tail, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):  # a client stuck on a lost broker
                    await asyncio.wait_for(client.stop(), 5.0)
        if self.databases is not None:
            self.databases.close()
        self._enter(HubPhase.STOPPED)

    async def _open_checks(self) -> None:
        """Open the databases (built once per data dir) and register the checks desk; the
        journals' tail folds the notices topic into the nominal index meanwhile."""
        self.databases = await asyncio.to_thread(open_configured, self.state.settings, self.nominal)
        await self._journals.catch_up()
        self.desk.register(CheckDesk(self.databases, acting=self.acting_for_desks))
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
            await self._until_next_pass()

    async def _until_next_pass(self) -> None:
        """A tick, cut short at a duty handover; while a unit this hub should hold is still
        another's (a handover under way), until the journal shows it released: waiting on
        the tail keeps it from resting, so the claim follows the release at once."""
        now = self.state.clock()
        pause = pause_before_pass(now, self.state.roster, timedelta(seconds=TICK))
        assert self._started_at is not None
        awaited = units_awaited(
            me=self.me,
            now=now,
            book=self.book,
            views=self.views,
            policy=self.policy,
            started_at=self._started_at,
            topics=self.topics,
            roster=self.state.roster,
        )
        if not awaited:
            await asyncio.sleep(pause.total_seconds())
            return

        def released() -> bool:
            at = self.state.clock()
            return any(self.book.owner_at(unit, at) in (None, self.me) for unit in awaited)

        await self._journals.wait_until(released, timeout=pause.total_seconds())

    async def _renew_forever(self) -> None:
        """Renewals on a task of their own: a coordination pass can wait seconds (a claim's
        read-back, a release waiting for a batch), and a late renewal lets a lease lapse."""
        while True:
            try:
                await self.renew_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed renewal must not end the others
                log.exception("renewal-failed", hub=self.state.hub)
            await asyncio.sleep(TICK)

    async def renew_due(self) -> None:
        """Renew the terms this hub works under its own lease, all together once one is due."""
        now = self.state.clock()
        held = {
            unit: term
            for unit, term in self.workers.items()
            if (self.book.lease(unit).owner, self.book.lease(unit).epoch) == (self.me, term.epoch)
        }
        due = due_for_renewal(held, self.last_renewed, now=now, renew_every=self.renew_every)
        for unit in sorted(due):
            term = held[unit]
            if self.workers.get(unit) is term:  # not released while an earlier one was sent
                await self._renew(unit, term.epoch, now)

    def _renewal_due(self, unit: str, now: datetime) -> bool:
        last = self.last_renewed.get(unit)
        return last is None or now - last >= self.renew_every

    async def _renew(self, unit: str, epoch: int, now: datetime) -> None:
        term = self.workers.get(unit)
        positions = dict(term.positions) if term else dict(self.book.lease(unit).positions)
        await self._write(Renew(unit, self.me, epoch, now, self.ttl, positions), wait=False)
        self.last_renewed[unit] = now

    # --- journals -----------------------------------------------------------------

    def _on_record(self, record: ReceivedRecord) -> None:
        self._fold[record.topic](record)

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
        self._fold_desk_event(record)
        learned = self.teams.fold_record(record)
        if learned:
            self.state.directory = self.state.directory.with_identities(learned)
            for identity in learned:
                log.info("team-identity-learned", hub=self.state.hub, team=identity.participant)

    def _on_key_entry(self, record: ReceivedRecord) -> None:
        """A participant's key set changed: lay it over the directory intake and desks use."""
        try:
            self.keys = self.keys.fold(record.value)
        except KeyEntryRefused as refusal:
            log.warning("key-entry-refused", hub=self.state.hub, detail=str(refusal))
            return
        self.state.directory = self.keys.overlay(self.state.directory)
        log.info(
            "key-directory-updated",
            hub=self.state.hub,
            participant=(record.key or b"").decode(errors="replace"),
            offset=record.offset,
        )

    def _fold_desk_event(self, record: ReceivedRecord) -> None:
        """Every hub folds the desks' events, whoever wrote them (``streams.core.desk_state``)."""
        try:
            event = parse_desk_event(record.value)
        except MalformedJournalEvent as fault:
            log.error(
                "desk-event-malformed", hub=self.state.hub, offset=record.offset, detail=str(fault)
            )
            return
        if isinstance(event, DiffusionRecorded | DiffusionRecalled):  # recorded by any hub
            self.diffusion_desk.fold_journal(event)
        elif event is not None:
            self.state.desks.fold(event)

    def acting_for_desks(self) -> bool:
        """Whether this hub acts on what the desks owe (breaches, reminders, consolidations):
        the one hub whose intake term is good now. Every hub folds; one acts."""
        term = self.workers.get(INTAKE)
        return term is not None and self.may_work(INTAKE, term.epoch)

    async def provision_team_inboxes(self) -> None:
        """Create the inboxes of teams the desk approved, before its outputs are produced."""
        inboxes = self.desk.take_new_inboxes()
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

    async def _journal_event(self, event: JournalEventModel, key: str) -> None:
        out = journal_event(self.state, event, key)
        await self.producer.send_and_wait(
            out.topic, out.value, key=out.key, headers=list(out.headers)
        )
        fields = event.model_dump(mode="json", exclude={"event", "hub", "time"})
        log.info(event.event_name, hub=self.state.hub, **fields)

    async def beat(self, *, leaving: bool = False) -> None:
        beat = Heartbeat(
            site=self.me,
            sequence=self._sequence,
            sent_at=self.state.clock(),
            lanes=tuple(sorted(self.workers)),
            backlog=self._work.backlog() if self._work is not None else 0,
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
            term = self.workers[unit]
            if self.may_work(unit, term.epoch):
                return FenceTag(unit, term.epoch, 0, term.positions.get(0, 0))
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

    async def coordinate(self) -> None:
        """One pass: ask the pure core what to do (``streams.core.coordination.step``), do it."""
        now = self.state.clock()
        holding = INTAKE in self.workers
        expected = intake_expected(self.me, now, self.state.roster, INTAKE_LEAD, holding=holding)
        if not holding and not expected:
            expected = intake_at_risk(self.me, now, self.book, self.views, self.policy)
        idle_ms = self.state.settings.idle_fetch_wait_ms
        self.work.idle_wait(idle_ms if holding else max(idle_ms, STANDBY_IDLE_FETCH_WAIT_MS))
        self.work.brace(self.state.settings.fetch_max_wait_ms if expected else None)
        intake = self.book.lease(INTAKE)
        self.intake_progress.forget(intake.epoch, intake.positions)
        assert self._started_at is not None
        moves = step(
            me=self.me,
            now=now,
            book=self.book,
            views=self.views,
            declared=self.declared,
            running={unit: term.epoch for unit, term in self.workers.items()},
            last_renewed=self.last_renewed,
            renew_every=self.renew_every,
            policy=self.policy,
            started_at=self._started_at,
            topics=self.topics,
            roster=self.state.roster,
        )
        claims: list[tuple[ClaimUnit, _ClaimTiming]] = []
        last_offset = -1
        for move in moves:
            if isinstance(move, Declare):
                await self._declare(move, now)
            elif isinstance(move, Drop):
                await self._drop(move)
            elif isinstance(move, RenewUnit):
                if self._renewal_due(move.unit, now):  # the renewals task may have done it
                    await self._renew(move.unit, move.epoch, now)
            elif isinstance(move, ReleaseUnit):
                await self._release(move)
            else:
                offset, timing = await self._claim(move, now)
                last_offset = max(last_offset, offset)
                claims.append((move, timing))
        if claims:
            await asyncio.wait_for(self._journals.wait_past(self.topics.leases, last_offset), 30)
            for claim, timing in claims:
                await self._take(claim.unit, claim.epoch, claim.reason, timing)
        if not self._ready:
            self._ready = True
            ready = HubReady(
                hub=self.state.hub, time=self.state.clock(), units=sorted(self.workers)
            )
            await self._journal_event(ready, self.state.hub)

    async def _declare(self, move: Declare, now: datetime) -> None:
        self.declared[move.site] = move.liveness
        view = self.views.get(move.site)
        if move.liveness is Liveness.DEAD:
            self.dead_since[move.site] = now
        declared = HubDead if move.liveness is Liveness.DEAD else HubAlive
        event = declared(
            hub=self.state.hub,
            time=self.state.clock(),
            site=move.site,
            last_heard=view.last_received if view else None,
            declared_at=now,
        )
        await self._journal_event(event, move.site)

    async def _drop(self, move: Drop) -> None:
        await self.work.remove(move.unit, grace=0)
        self.ledgers.pop(move.unit, None)
        lost = LeaseLost(
            hub=self.state.hub,
            time=self.state.clock(),
            unit=move.unit,
            epoch=move.epoch,
            now_owner=move.now_owner,
            now_epoch=move.now_epoch,
        )
        await self._journal_event(lost, move.unit)

    async def _release(self, move: ReleaseUnit) -> None:
        unit = move.unit
        final = (
            await self.work.remove(unit)
            if unit in self.workers
            else dict(self.book.lease(unit).positions)
        )
        self.ledgers.pop(unit, None)
        offset = await self._write(Release(unit, self.me, move.epoch, self.state.clock(), final))
        # read it back before the next pass, which would otherwise release it once more
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._journals.wait_past(self.topics.leases, offset or 0), self.ttl.total_seconds()
            )
        released = LeaseReleased(
            hub=self.state.hub,
            time=self.state.clock(),
            unit=unit,
            epoch=move.epoch,
            reason="handover",
            handing_to=move.handing_to,
            positions=final,
        )
        await self._journal_event(released, unit)

    async def _claim(self, move: ClaimUnit, now: datetime) -> tuple[int, _ClaimTiming]:
        """Write the claim; return its offset and the timings its journal entry carries."""
        previous = self.book.lease(move.unit)
        view = self.views.get(move.previous_owner) if move.previous_owner else None
        seen: dict[int, int] = {}
        if move.unit == INTAKE and move.unreleased:
            # an unreleased term: start at the first input it left without an output
            await self._journals.catch_up()
            seen = self.intake_progress.resume_from(previous.epoch, previous.positions)
        offset = await self._write(Claim(move.unit, self.me, move.epoch, now, self.ttl, seen))
        timing = _ClaimTiming(
            previous_owner=move.previous_owner,
            previous_epoch=move.previous_epoch,
            last_heard=view.last_received if view else None,
            detected_at=self.dead_since.get(move.previous_owner or ""),
            lease_expired_at=previous.expires_at,
            claimed_at=now,
        )
        return offset or 0, timing

    async def _take(self, unit: str, epoch: int, reason: ClaimReason, timing: _ClaimTiming) -> None:
        lease = self.book.lease(unit)
        if (lease.owner, lease.epoch) != (self.me, epoch):
            log.info(
                "claim-lost", unit=unit, epoch=epoch, owner=lease.owner, owner_epoch=lease.epoch
            )
            return
        confirmed = self.state.clock()
        self.last_renewed[unit] = confirmed
        start = dict(lease.positions)
        claimed = LeaseClaimed(
            hub=self.state.hub,
            time=self.state.clock(),
            unit=unit,
            epoch=epoch,
            reason=reason.value,
            previous_owner=timing.previous_owner,
            previous_epoch=timing.previous_epoch,
            last_heard=timing.last_heard,
            detected_at=timing.detected_at,
            lease_expired_at=timing.lease_expired_at,
            claimed_at=timing.claimed_at,
            confirmed_at=confirmed,
            start=start,
        )
        self.claims[(unit, epoch)] = claimed
        self.state.metrics.claimed(unit, reason.value)
        await self._start_worker(unit, epoch, start)
        await self._journal_event(claimed, unit)

    async def _start_worker(self, unit: str, epoch: int, start: dict[int, int]) -> None:
        tracer, hub = self.state.tracer, self.state.hub
        if unit == INTAKE:
            await self._journals.catch_up()  # know everything admitted before this term
            intake = traced_intake(self._intake, tracer, hub=hub, topics=self.topics)
            await self.work.add(unit, self.topics.inbound, epoch, start, intake)
        else:
            delivery = LaneDelivery(self)
            self.ledgers[unit] = delivery.ledger
            traced = traced_lane(delivery.handle, tracer, hub=hub, unit=unit, topics=self.topics)
            await self.work.add(unit, unit, epoch, start, traced, delivery.flush)

    async def _first_output(self, unit: str, epoch: int, at: datetime) -> None:
        claim = self.claims.get((unit, epoch))
        first = FirstOutput(
            hub=self.state.hub,
            time=self.state.clock(),
            unit=unit,
            epoch=epoch,
            reason=claim.reason if claim else None,
            previous_owner=claim.previous_owner if claim else None,
            last_heard=claim.last_heard if claim else None,
            claimed_at=claim.claimed_at if claim else None,
            at=at,
        )
        await self._journal_event(first, unit)

    # --- the work -----------------------------------------------------------------

    def _admit(self, record: ReceivedRecord) -> Outcome:
        state = self.state
        return admit(
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

    async def _intake(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        state = self.state
        outcome = self._admit(record)
        if unknown_signing_key(outcome, record, state.directory, state.policy.max_bytes):
            # a key rotated a moment ago: its entry precedes its first use, so read it and retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._journals.catch_up(), self.ttl.total_seconds())
            outcome = self._admit(record)
        if isinstance(outcome, Admitted):
            state.counts["admitted"] += 1
            state.metrics.admitted()
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
            state.metrics.refused(outcome.reason.value)
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
        state.metrics.readmitted()
        return [outcome.again.lane]

    def desk_handle(self, record: ReceivedRecord, now: datetime) -> list[OutboundRecord]:
        """Open a message to ``ccc`` with this hub's key and let the desk act on it."""
        state = self.state
        try:
            sealed = parse_envelope(record.value, max_bytes=state.settings.max_message_bytes)
            opened = open_sealed(
                sealed,
                topic=(record.header(names.SEALED_TOPIC) or b"").decode(),
                key=record.header(names.SEALED_KEY) or b"",
                directory=state.directory,
                identity=state.identity,
            )
        except RejectedMessage as refusal:  # intake verified it: this is a hub-side fault
            log.error(
                "desk-cannot-open", lane=record.topic, offset=record.offset, detail=str(refusal)
            )
            return []
        return self.desk.handle(opened, now)

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
        policy = runtime.state.policy
        self.ledger = DeliveryLedger(ledger_horizon(policy.freshness, policy.future_skew))
        self.clocks: dict[int, ClockBatch] = {}  # by lane partition, until the batch ends

    def flush(self, partition: int) -> list[OutboundRecord]:
        """The batch's clock events from ``partition``: one journal record for the clocks
        its deliveries started, one for those its acknowledgements stopped."""
        batch = self.clocks.pop(partition, None)
        if batch is None:
            return []
        state = self.runtime.state
        return [
            journal_event(state, event, state.hub)
            for event in batch.take(hub=state.hub, now=state.clock())
        ]

    async def handle(self, record: ReceivedRecord, epoch: int) -> list[OutboundRecord]:
        runtime = self.runtime
        state = runtime.state
        tag, verdict = upstream_verdict(record, lambda t: FenceVerdict.UNKNOWN)
        if tag is not None and tag.unit == INTAKE:
            verdict = await runtime.judge_upstream(tag)
        if tag is None or tag.unit != INTAKE or verdict is not FenceVerdict.ACCEPT:
            state.counts["fenced-input"] += 1
            state.metrics.fenced()
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
        objective = OBJECTIVES[plan.precedence] / state.settings.clock_scale
        self.clocks.setdefault(record.partition, ClockBatch()).add(
            plan, now=now, objective=objective
        )
        outputs = list(plan.inbox)
        outputs += receipt_records(
            plan.receipts, hub=state.identity, topics=runtime.topics, now=now
        )
        if plan.to_ccc:
            outputs += runtime.desk_handle(record, now)
            await runtime.provision_team_inboxes()
        state.counts["delivered"] += len(plan.inbox)
        state.counts["ccc"] += int(plan.to_ccc)
        state.counts["duplicates"] += len(plan.duplicates)
        state.metrics.delivered(
            len(plan.inbox),
            plan.precedence.value,
            (state.clock() - plan.header.created_at).total_seconds(),
            duplicates=len(plan.duplicates),
        )
        if plan.to_ccc:
            state.metrics.to_ccc()
        log.debug(
            "delivered",
            message_id=plan.header.message_id,
            trace_id=plan.header.trace_id,
            precedence=plan.precedence.value,
            recipients=len(plan.inbox),
            epoch=epoch,
        )
        return outputs
