"""The interventions by name: :func:`register` adds one, :func:`make_intervention` builds one
from a spec such as ``penalty:100`` or ``drest:0.9,32``."""

from __future__ import annotations

from offswitch.agents.interventions.base import Intervention, InterventionError

INTERVENTIONS: dict[str, type[Intervention]] = {}


def register(cls: type[Intervention]) -> type[Intervention]:
    """Make an intervention choosable by its ``name``; use it as a class decorator."""
    if cls.name in INTERVENTIONS and INTERVENTIONS[cls.name] is not cls:
        raise InterventionError(
            f"two interventions are named {cls.name!r} ({INTERVENTIONS[cls.name].__module__} "
            f"and {cls.__module__}): rename one"
        )
    INTERVENTIONS[cls.name] = cls
    return cls


def make_intervention(spec: str) -> Intervention:
    """Build an intervention from ``name`` or ``name:PARAMS``, e.g. ``penalty:100@button``."""
    if not isinstance(spec, str):
        raise InterventionError(
            f"intervention {spec!r} is not text: write a name such as penalty:100"
        )
    name, colon, params = spec.partition(":")
    if name not in INTERVENTIONS:
        raise InterventionError(
            f"unknown intervention {name!r}: choose one of {', '.join(sorted(INTERVENTIONS))}"
        )
    return INTERVENTIONS[name].parse(params if colon else None)
