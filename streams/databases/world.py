"""Who reports what, and when: the country and date draws the three databases share.

Countries come from ``schemas.registry`` (the 196 members), weighted so that the larger
reporters dominate as they do in the real databases: ``HEAVY`` members count
``HEAVY_WEIGHT`` times, the rest once. Dates are ISO strings drawn uniformly between two
years; the list of them is built once and shared, so a million records hold a few thousand
distinct date strings, not a million.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from itertools import accumulate

from schemas.registry import default_registry

__all__ = ["HEAVY", "HEAVY_WEIGHT", "CountryDraw", "draw_date", "iso_dates"]

HEAVY = frozenset(
    {"USA", "GBR", "FRA", "DEU", "ITA", "ESP", "CAN", "AUS", "BRA", "RUS", "CHN", "IND"}
    | {"NLD", "BEL", "POL", "TUR", "MEX", "ARG", "ZAF", "NGA", "JPN", "KOR", "UKR", "SWE"}
)
HEAVY_WEIGHT = 25


class CountryDraw:
    """Draws member ISO3 codes, heavy reporters more often; same rng, same codes."""

    __slots__ = ("_codes", "_cumulative")

    def __init__(self) -> None:
        self._codes = default_registry().codes()
        weights = [HEAVY_WEIGHT if code in HEAVY else 1 for code in self._codes]
        self._cumulative = list(accumulate(weights))

    @property
    def codes(self) -> tuple[str, ...]:
        return self._codes

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self._codes, cum_weights=self._cumulative)[0]

    def uniform(self, rng: random.Random) -> str:
        return rng.choice(self._codes)


@cache
def iso_dates(first_year: int, last_year: int) -> tuple[str, ...]:
    """Every day from 1 January ``first_year`` to 31 December ``last_year``, as ISO text."""
    first, last = date(first_year, 1, 1), date(last_year, 12, 31)
    return tuple((first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1))


def draw_date(rng: random.Random, first_year: int, last_year: int) -> str:
    return rng.choice(iso_dates(first_year, last_year))
