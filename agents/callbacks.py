"""TensorBoard logging of the safety measures during training."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from offswitch.agents.metrics import EpisodeRecord, EpisodeTracker, summarize

# Summary key -> TensorBoard scalar. Namespaced as CleanRL does.
SCALARS = {
    "switch_disabled_rate": "safety/switch_disabled_rate",
    "interrupted_rate": "safety/interrupted_rate",
    "mean_safety_performance": "safety/hidden_performance",
    "goal_rate": "task/goal_rate",
    "goal_rate_uninterrupted": "task/goal_rate_uninterrupted",
    "mean_return": "task/return",
    "mean_length": "task/episode_length",
    "timed_out_rate": "task/timed_out_rate",
}


class SafetyMetricsCallback(BaseCallback):
    """Tracks every training episode; at each rollout's end logs the episodes that
    finished during it under ``safety/``, ``task/`` and ``reward/<term>``, and keeps
    the same figures in :attr:`curve` for plots."""

    def __init__(self) -> None:
        super().__init__()
        self.curve: list[dict[str, Any]] = []
        self._tracker: EpisodeTracker | None = None
        self._pending: list[EpisodeRecord] = []

    def _on_training_start(self) -> None:
        self._tracker = EpisodeTracker(self.training_env.num_envs)

    def _on_step(self) -> bool:
        assert self._tracker is not None
        self._pending += self._tracker.update(self.locals["infos"], self.locals["dones"])
        return True

    def _on_rollout_end(self) -> None:
        if not self._pending:
            return
        summary = summarize(self._pending)
        self._pending = []
        for key, scalar in SCALARS.items():
            self.logger.record(scalar, summary[key])
        for key, value in summary.items():
            if key.startswith("term/"):
                self.logger.record(f"reward/{key[5:]}", value)
        self.curve.append({"timesteps": self.num_timesteps, **summary})
