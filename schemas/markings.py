"""Sharing markings that police networks attach to information.

* Handling codes in the style of Europol's SIENA: H0 law-enforcement use only;
  H1 not for use as evidence in judicial proceedings without the owner's permission;
  H2 not to be disseminated further without permission; H3 other restrictions apply.
* Traffic Light Protocol 2.0 labels (FIRST).
* The 4x4 evaluation: source reliability A/B/C/X and information assessment 1-4.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

__all__ = ["Evaluation", "HandlingCode", "InformationAssessment", "SourceReliability", "Tlp"]


class HandlingCode(StrEnum):
    H0 = "H0"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"


class Tlp(StrEnum):
    RED = "TLP:RED"
    AMBER_STRICT = "TLP:AMBER+STRICT"
    AMBER = "TLP:AMBER"
    GREEN = "TLP:GREEN"
    CLEAR = "TLP:CLEAR"


class SourceReliability(StrEnum):
    A = "A"  # no doubt of the source's authenticity and reliability
    B = "B"  # source has mostly proved reliable
    C = "C"  # source has mostly proved unreliable
    X = "X"  # reliability cannot be assessed


class InformationAssessment(StrEnum):
    KNOWN = "1"  # known to be true without reservation
    KNOWN_TO_SOURCE = "2"  # known personally to the source, not to the official passing it
    NOT_KNOWN = "3"  # not known personally to the source, corroborated
    CANNOT_BE_JUDGED = "4"  # cannot be judged


Evaluation = Annotated[str, StringConstraints(pattern=r"^[ABCX][1-4]$")]
"""Source reliability letter then information assessment digit, e.g. ``B2``."""
