"""Learners with tuned defaults, the safety-metric callback, evaluation and interventions."""

from __future__ import annotations

from offswitch.agents.evaluation import POLICIES, evaluate, run_episodes
from offswitch.agents.learners import LEARNERS, make_model
from offswitch.agents.metrics import EpisodeRecord, EpisodeTracker, summarize

__all__ = [
    "LEARNERS",
    "POLICIES",
    "EpisodeRecord",
    "EpisodeTracker",
    "evaluate",
    "make_model",
    "run_episodes",
    "summarize",
]
