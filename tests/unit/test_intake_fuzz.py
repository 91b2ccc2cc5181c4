"""Fuzzed intake, pure: ``admit`` never raises and refuses every spoiled record with a reason."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.ncb.adapter import NcbAdapter
from brokers.records import OutboundRecord, ReceivedRecord
from schemas.bodies import MessageBody
from schemas.errors import RejectReason
from schemas.topics import TopicCatalog
from streams.core.dedup import SeenMessages
from streams.core.intake import Admitted, IntakePolicy, Refused, admit
from streams.core.roster import DutyRoster
from tests.unit.factories import T0, small_keyring
from tests.unit.fuzzing import decorated, fuzzed_record, header_lists

TOPICS = TopicCatalog("i247")
POLICY = IntakePolicy(max_bytes=8192)
BODY = MessageBody(subject="Cash courier intercepted", text="EUR 400,000 in false-bottom case")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _good() -> OutboundRecord:
    directory, identities = small_keyring()
    adapter = NcbAdapter(identities["FRA"], directory, TOPICS)
    return adapter.compose(["DEU", "ITA"], BODY, now=T0, random_bytes=os.urandom)[1]


GOOD = _good()


def _admit(record: OutboundRecord, seen: SeenMessages | None = None) -> object:
    received = ReceivedRecord(record.topic, 0, 7, 0, record.key, record.value, record.headers)
    return admit(
        received,
        now=T0,
        directory=small_keyring()[0],
        seen=SeenMessages() if seen is None else seen,
        roster=DutyRoster(),
        topics=TOPICS,
        policy=POLICY,
    )


def test_the_good_record_the_fuzzer_starts_from_is_admitted() -> None:
    assert isinstance(_admit(GOOD), Admitted)


@FUZZ
@given(fuzzed_record(GOOD, max_bytes=POLICY.max_bytes))
def test_every_spoiled_record_is_refused_with_a_reason_and_never_raises(
    record: OutboundRecord,
) -> None:
    outcome = _admit(record)
    assert isinstance(outcome, Refused), outcome
    assert isinstance(outcome.reason, RejectReason)
    assert outcome.detail


@settings(max_examples=30, deadline=None)
@given(decorated(GOOD))
def test_extra_headers_outside_the_signature_leave_a_good_record_admissible(
    record: OutboundRecord,
) -> None:
    assert isinstance(_admit(record), Admitted)


@FUZZ
@given(
    st.binary(max_size=4096),
    st.none() | st.binary(max_size=32),
    header_lists,
    st.text(max_size=30),
    st.integers(0, 2**63 - 1),
)
def test_arbitrary_bytes_keys_headers_and_topics_are_refused_not_raised(
    value: bytes, key: bytes | None, headers: list[tuple[str, bytes]], topic: str, offset: int
) -> None:
    received = ReceivedRecord(topic, 0, offset, 0, key, value, tuple(headers))
    outcome = admit(
        received,
        now=T0,
        directory=small_keyring()[0],
        seen=SeenMessages(),
        roster=DutyRoster(),
        topics=TOPICS,
        policy=POLICY,
    )
    assert isinstance(outcome, Refused)
    assert outcome.detail
