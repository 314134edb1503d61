"""The interventions, chosen by name (``offswitch train --help`` lists them).

Each lives in its own file in this package and registers itself with the
:func:`register` decorator; every module here is imported below, so adding an
intervention takes one file (see the README for a complete example, which
registers from outside the package the same way).
"""

from __future__ import annotations

import importlib
import pkgutil

from offswitch.agents.interventions.base import (
    Intervention,
    InterventionError,
    RewardTerm,
)

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


# Every module of this package defines and registers interventions.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


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
