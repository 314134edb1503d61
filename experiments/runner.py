"""Training runs: one run top to bottom, and many runs spread over the CPU cores."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from offswitch.agents.evaluation import evaluate
from offswitch.agents.interventions import Intervention, make_intervention
from offswitch.agents.learners import learner_class
from offswitch.agents.metrics import EpisodeRecord, measure_summary
from offswitch.agents.training import Budget, Learner, TrainingHooks
from offswitch.envs.engine import TabularWorld
from offswitch.experiments.config import TrainConfig, package_versions

ProgressFn = Callable[[str, "float | None"], None]
"""Called with ``(run_name, fraction of the budget done)``, and ``(run_name, None)`` once the
run is written."""

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
"""Summary key -> TensorBoard scalar, namespaced as CleanRL does; ``reward/<term>`` too."""


class RunHooks(TrainingHooks):
    """The runner's side of training: after each rollout, the intervention learns from the
    finished episodes, their summary becomes a point of the learning curve and TensorBoard
    scalars, and progress is reported."""

    def __init__(
        self,
        world: TabularWorld,
        intervention: Intervention,
        budget: Budget,
        log_dir: Path | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.world = world
        self.intervention = intervention
        self.budget = budget
        self.curve: list[dict[str, Any]] = []
        self.episodes = 0
        self.progress = progress
        self._writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir))

    def rollout_end(self, episodes: Sequence[EpisodeRecord], timesteps: int) -> None:
        scalars = dict(self.intervention.on_rollout_end(episodes))
        self.episodes += len(episodes)
        if episodes:
            summary = measure_summary(episodes, self.world)
            self.curve.append({"timesteps": timesteps, "episodes": self.episodes, **summary})
            scalars.update({tag: summary[key] for key, tag in SCALARS.items()})
            scalars.update(
                {f"reward/{k[5:]}": v for k, v in summary.items() if k.startswith("term/")}
            )
        if self._writer is not None:
            for tag, value in scalars.items():
                self._writer.add_scalar(tag, value, timesteps)
        if self.progress is not None:
            done = timesteps / self.budget.steps if self.budget.steps else None
            if done is None:
                done = self.episodes / self.budget.episodes
            self.progress(min(done, 1.0))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def build(config: TrainConfig, log_dir: Path | None = None) -> tuple[Learner, TabularWorld]:
    """The configured learner, untrained, and the tables of its world."""
    world = config.world()
    intervention = make_intervention(config.intervention)
    learner_type = learner_class(config.agent)
    # The intervention may change the learner (myopia's discount); the user's --set wins.
    overrides = {**intervention.learner_overrides(config.agent), **config.learner_overrides}
    learner = learner_type(world, intervention, config.seed, overrides, config.observation, log_dir)
    return learner, world


def train_one(config: TrainConfig, progress: Any = None) -> dict[str, Any]:
    """Build, train, evaluate and write one run: its config, metrics (evaluation and learning
    curve), TensorBoard logs and trained agent, in ``out_dir/<run name>/``.

    ``progress``, if given, is a queue that receives ``(run_name, fraction done)`` after each
    rollout and ``(run_name, None)`` when the run is written. Returns the metrics that
    ``metrics.json`` holds.
    """
    config.validate()
    run_dir = Path(config.out_dir) / config.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    budget = config.budget()

    # 1. Build: the learner on its world, under the intervention.
    learner, world = build(config, run_dir / "tensorboard")
    _write_json(
        run_dir / "config.json",
        {
            "config": config.to_dict(),
            "budget": {"steps": budget.steps, "episodes": budget.episodes},
            "learner": learner.describe(),
            "intervention": learner.intervention.to_dict(),
            "versions": package_versions(),
        },
    )
    # 2. Train.
    report = None if progress is None else (lambda done: progress.put((config.run_name, done)))
    hooks = RunHooks(world, learner.intervention, budget, run_dir / "tensorboard", report)
    start = time.perf_counter()
    learner.train(budget, hooks)
    train_seconds = time.perf_counter() - start
    hooks.close()
    learner.save(run_dir)

    # 3. Evaluate on the bare world: same task reward and measures for everyone.
    evaluation = evaluate(
        learner.predict, world, config.eval_episodes, config.eval_seed, config.observation
    )
    # 4. Write.
    steps = getattr(learner, "steps", None) or budget.steps
    metrics = {
        "run": config.run_name,
        "config": config.to_dict(),
        "train_seconds": round(train_seconds, 2),
        "steps_per_second": round(steps / train_seconds) if steps else None,
        "evaluation": evaluation,
        "curve": hooks.curve,
    }
    _write_json(run_dir / "metrics.json", metrics)
    if progress is not None:
        progress.put((config.run_name, None))
    return metrics


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=True))
    tmp.replace(path)  # a crash never leaves half a file behind


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def run_many(
    configs: Sequence[TrainConfig],
    workers: int | None = None,
    on_progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Run every config, ``workers`` processes at a time (default: one per core).

    ``on_progress`` (see :data:`ProgressFn`) is called from this process as runs advance.
    Results come back in the order of ``configs``.
    """
    workers = min(workers or default_workers(), len(configs))
    for config in configs:
        config.validate()  # fail before any process starts
    # spawn, not fork: a forked child of a process that already ran torch can hang
    # in OpenMP. Scripts that call this need the `if __name__ == "__main__":` guard.
    ctx = mp.get_context("spawn")
    manager = ctx.Manager() if on_progress else None
    sink = manager.Queue() if manager else None
    results: list[dict[str, Any] | None] = [None] * len(configs)
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures: dict[Future, int] = {
                pool.submit(train_one, config, sink): i for i, config in enumerate(configs)
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(sink, on_progress)
                for future in done:
                    results[futures[future]] = future.result()
            _drain(sink, on_progress)
    finally:
        if manager is not None:
            manager.shutdown()
    return [r for r in results if r is not None]


def _drain(sink: Any, on_progress: ProgressFn | None) -> None:
    if sink is None or on_progress is None:
        return
    while True:
        try:
            name, steps = sink.get_nowait()
        except queue.Empty:
            return
        on_progress(name, steps)
