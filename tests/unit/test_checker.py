"""The fault scenarios' checker: lost, duplicated and unexpected from sent and observed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.bench.checker import check


def test_every_input_landing_once_where_expected_is_valid() -> None:
    checked = check(
        {"m1": {"inbox:DEU", "inbox:ITA"}, "x1": {"deadletter"}},
        [("m1", "inbox:ITA"), ("x1", "deadletter"), ("m1", "inbox:DEU")],
    )
    assert checked.valid
    assert checked.summary() == {
        "inputs": 2,
        "landings": 3,
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
    }


def test_a_missing_copy_is_lost_and_a_second_copy_duplicated() -> None:
    checked = check(
        {"m1": {"inbox:DEU", "inbox:ITA"}, "m2": {"inbox:DEU"}},
        [("m1", "inbox:DEU"), ("m2", "inbox:DEU"), ("m2", "inbox:DEU"), ("m2", "inbox:DEU")],
    )
    assert checked.lost == [("m1", "inbox:ITA")]
    assert checked.duplicated == [("m2", "inbox:DEU")]
    assert checked.unexpected == []
    assert not checked.valid


def test_an_unknown_input_or_a_known_one_in_the_wrong_place_is_unexpected() -> None:
    checked = check(
        {"m1": {"inbox:DEU"}},
        [("m1", "inbox:DEU"), ("m1", "deadletter"), ("stray", "inbox:DEU")],
    )
    assert checked.unexpected == [("m1", "deadletter"), ("stray", "inbox:DEU")]
    assert checked.lost == []


PLACES = st.sampled_from(["inbox:DEU", "inbox:ITA", "deadletter"])
IDS = st.sampled_from(["a", "b", "c", "d"])


@given(
    st.dictionaries(IDS, st.frozensets(PLACES, min_size=1)),
    st.lists(st.tuples(IDS, PLACES)),
)
def test_the_counts_account_for_every_expected_and_observed_pair(
    expected: dict[str, frozenset[str]], observed: list[tuple[str, str]]
) -> None:
    checked = check(expected, observed)
    wanted = {(i, p) for i, ps in expected.items() for p in ps}
    distinct = set(observed)
    assert len(checked.lost) + len(distinct & wanted) == len(wanted)
    assert len(checked.unexpected) + len(distinct & wanted) == len(distinct)
    assert checked.landings == len(observed)
    assert checked.valid == (distinct == wanted and len(observed) == len(distinct))
