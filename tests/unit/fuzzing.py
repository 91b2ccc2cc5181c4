"""Hypothesis strategies for fuzzed intake: what a broken or hostile gateway might write.

``fuzzed_record`` starts from one good, sealed record and spoils its value or key one way
(random bytes, random keys, truncations, single-byte flips, oversized values, another
bureau's key, or a field of the envelope replaced by arbitrary JSON) and may add headers
(a few random ones, a huge count, a large value). ``decorated`` only adds headers: Kafka
headers are outside the signature, so such a record is still admissible. Shared
by the unit test of ``admit`` and the integration test on a real broker and hub.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import strategies as st

from brokers.records import OutboundRecord

__all__ = ["decorated", "decorations", "fuzzed_record", "header_lists", "json_values"]

CODES = ("FRA", "DEU", "ITA", "ESP", "USA", "hub:lyon", "", "fra", "XKX")

header_keys = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["ce_id", "ce_type", "ce_source", "i247-hub", "i247-origin", "i247.dlq.reason"]
)
header_lists = st.lists(st.tuples(header_keys, st.binary(max_size=64)), max_size=8)
decorations: st.SearchStrategy[tuple[tuple[str, bytes], ...]] = st.one_of(
    st.just(()),
    header_lists.map(tuple),
    st.integers(200, 2000).map(lambda n: tuple((f"x-{i}", b"v" * 8) for i in range(n))),
    st.integers(1, 64 * 1024).map(lambda n: (("x-big", b"h" * n),)),
)
"""Extra headers: none, a few random ones, a huge count, or one large value."""
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def _field_replaced(record: OutboundRecord, path: list[str], value: Any) -> OutboundRecord:
    envelope = json.loads(record.value)
    target = envelope
    for part in path[:-1]:
        target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return record
    target[path[-1]] = value
    return dataclasses.replace(record, value=json.dumps(envelope).encode())


def _paths(record: OutboundRecord) -> list[list[str]]:
    envelope = json.loads(record.value)
    paths = [[k] for k in envelope]
    header = envelope.get("header")
    if isinstance(header, dict):
        paths += [["header", k] for k in header]
    return [*paths, ["unknown-field"], ["header", "unknown-field"]]


def fuzzed_record(good: OutboundRecord, *, max_bytes: int) -> st.SearchStrategy[OutboundRecord]:
    """A spoiled variant of ``good`` (value or key), perhaps with extra headers: never
    admissible, since headers are not signed and the spoiling is in what is."""
    size = len(good.value)
    random_bytes = st.builds(
        lambda value, key, headers: OutboundRecord(good.topic, key, value, tuple(headers)),
        st.binary(max_size=2048),
        st.none() | st.binary(max_size=16) | st.sampled_from([c.encode() for c in CODES]),
        header_lists,
    )
    truncated = st.integers(0, size - 1).map(
        lambda n: dataclasses.replace(good, value=good.value[:n])
    )
    flipped = st.tuples(st.integers(0, size - 1), st.integers(1, 255)).map(
        lambda at: dataclasses.replace(
            good,
            value=good.value[: at[0]]
            + bytes([good.value[at[0]] ^ at[1]])
            + good.value[at[0] + 1 :],
        )
    )
    oversized = st.integers(1, 64 * 1024).map(
        lambda extra: dataclasses.replace(
            good, value=good.value + b" " * (max_bytes - size + extra)
        )
    )
    sender = (good.key or b"").decode()
    wrong_key = st.sampled_from([c.encode() for c in CODES if c != sender]).map(
        lambda key: dataclasses.replace(good, key=key)
    )
    no_key = st.just(dataclasses.replace(good, key=None))
    field = st.tuples(st.sampled_from(_paths(good)), json_values).map(
        lambda pv: _field_replaced(good, pv[0], pv[1])
    )
    spoiled = st.one_of(
        random_bytes,
        truncated,
        flipped,
        oversized,
        wrong_key,
        no_key,
        field.filter(lambda r: json.loads(r.value) != json.loads(good.value)),
    )
    return st.tuples(spoiled, decorations).map(
        lambda pair: dataclasses.replace(pair[0], headers=pair[0].headers + pair[1])
    )


def decorated(good: OutboundRecord) -> st.SearchStrategy[OutboundRecord]:
    """``good`` with extra Kafka headers: unsigned, so still admissible, and forwarded."""
    return decorations.map(lambda extra: dataclasses.replace(good, headers=good.headers + extra))
