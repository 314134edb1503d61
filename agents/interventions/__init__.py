"""The interventions, chosen by name: ``none``, ``penalty:K``.

Each lives in its own file. Adding one takes a subclass of
:class:`~offswitch.agents.interventions.base.Intervention` and a call to
:func:`register` (see the README for a complete example).
"""

from __future__ import annotations

from offswitch.agents.interventions.base import (
    Intervention,
    InterventionError,
    RewardTerm,
)
from offswitch.agents.interventions.none import NoIntervention
from offswitch.agents.interventions.penalty import CorrigibilityPenalty

INTERVENTIONS: dict[str, type[Intervention]] = {}


def register(cls: type[Intervention]) -> type[Intervention]:
    """Make an intervention choosable by its ``name``; usable as a class decorator."""
    INTERVENTIONS[cls.name] = cls
    return cls


for _cls in (NoIntervention, CorrigibilityPenalty):
    register(_cls)


def make_intervention(spec: str) -> Intervention:
    """Build an intervention from ``name`` or ``name:PARAM``, e.g. ``penalty:100``."""
    name, _, param = spec.partition(":")
    if name not in INTERVENTIONS:
        raise InterventionError(
            f"unknown intervention {name!r}: choose one of {', '.join(sorted(INTERVENTIONS))}"
        )
    return INTERVENTIONS[name](param if _ else None)


__all__ = [
    "INTERVENTIONS",
    "Intervention",
    "InterventionError",
    "RewardTerm",
    "make_intervention",
    "register",
]
