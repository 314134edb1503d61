"""The interventions, chosen by name (``offswitch train --help`` lists them).

Each lives in its own file in this package and registers itself with the
:func:`~offswitch.agents.interventions.registry.register` decorator; every module here is
imported below, so adding an intervention takes one file (the README has a complete example,
which registers from outside the package the same way).
"""

from __future__ import annotations

import importlib
import pkgutil

from offswitch.agents.interventions.base import (
    Critic,
    Intervention,
    InterventionError,
    Param,
    RewardTerm,
    Shaping,
)
from offswitch.agents.interventions.registry import INTERVENTIONS, make_intervention, register

# Every other module of this package defines and registers interventions.
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry", "wrapper"):
        importlib.import_module(f"{__name__}.{_module.name}")


__all__ = [
    "INTERVENTIONS",
    "Critic",
    "Intervention",
    "InterventionError",
    "Param",
    "RewardTerm",
    "Shaping",
    "make_intervention",
    "register",
]
