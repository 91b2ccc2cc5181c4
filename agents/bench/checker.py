"""A Jepsen-style checker for the fault scenarios: what was sent against what the topics hold.

Pure: a scenario says where each input must land (``expected``: input id to the places it
must each reach once, e.g. ``{"inbox:DEU", "inbox:ITA"}`` or ``{"deadletter"}``) and reads
the real topics into ``observed`` pairs (input id, place); ``check`` counts what was lost,
what arrived more than once, and what arrived where nothing was expected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Checked", "Landing", "check"]

Landing = tuple[str, str]  # (input id, place)


@dataclass(frozen=True, slots=True)
class Checked:
    """The verdict: every list holds (input id, place) pairs, sorted."""

    inputs: int
    landings: int
    lost: list[Landing]
    duplicated: list[Landing]
    unexpected: list[Landing]

    @property
    def valid(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)

    def summary(self) -> dict[str, int]:
        """The counts a report prints (docs/reliability.md)."""
        return {
            "inputs": self.inputs,
            "landings": self.landings,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "unexpected": len(self.unexpected),
        }


def check(expected: Mapping[str, Iterable[str]], observed: Iterable[Landing]) -> Checked:
    """Compare where inputs had to land with where they did.

    A pair expected and never observed is lost; one observed more than once is duplicated
    (counted once per pair); one observed but not expected (an unknown input id, or a
    known one in the wrong place) is unexpected.
    """
    wanted = {(input_id, place) for input_id, places in expected.items() for place in places}
    seen = Counter(observed)
    return Checked(
        inputs=len(expected),
        landings=sum(seen.values()),
        lost=sorted(wanted - seen.keys()),
        duplicated=sorted(pair for pair, n in seen.items() if n > 1 and pair in wanted),
        unexpected=sorted(pair for pair in seen if pair not in wanted),
    )
