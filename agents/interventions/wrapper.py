"""An intervention on one Gymnasium environment, for tools that step worlds one at a time.

The wrapper lives beside :class:`~offswitch.agents.interventions.base.Intervention`, whose
``wrap`` builds it (one module, so that neither imports the other); this name stays.
"""

from offswitch.agents.interventions.base import InterventionWrapper

__all__ = ["InterventionWrapper"]
