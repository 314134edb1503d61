"""Learners behind one interface, the interventions, training worlds and evaluation.

Importing this package is cheap: Stable-Baselines3 and torch load only when a learner that
needs them is built (:func:`offswitch.agents.learners.learner_class`).
"""

from __future__ import annotations

# DReST's measures plug into every evaluation of a world with a timed shutdown.
from offswitch.agents import drest_metrics as _drest_metrics  # noqa: F401
from offswitch.agents.evaluation import POLICIES, evaluate, run_episodes
from offswitch.agents.metrics import EpisodeAccumulator, EpisodeRecord, summarize

__all__ = [
    "POLICIES",
    "EpisodeAccumulator",
    "EpisodeRecord",
    "evaluate",
    "run_episodes",
    "summarize",
]
