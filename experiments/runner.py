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

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env

from offswitch.agents.callbacks import SafetyMetricsCallback
from offswitch.agents.evaluation import evaluate
from offswitch.agents.interventions import make_intervention
from offswitch.agents.learners import LEARNERS, make_model
from offswitch.experiments.config import TrainConfig, package_versions

ProgressFn = Callable[[str, "int | None"], None]
"""Called with ``(run_name, timesteps so far)``, and ``(run_name, None)`` once the run is done."""


def train_one(config: TrainConfig, progress: Any = None) -> dict[str, Any]:
    """Train one run and evaluate it; write its config, metrics, TensorBoard logs and model.

    ``progress``, if given, is a queue that receives ``(run_name, timesteps)`` after each
    rollout and ``(run_name, None)`` when the run is written.
    Returns the metrics that ``metrics.json`` holds.
    """
    # One torch thread per process: two processes with two threads each ran
    # 5-10x slower on 2 cores (DEVELOPERS.md).
    torch.set_num_threads(1)
    config.validate()
    run_dir = Path(config.out_dir) / config.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    learner = LEARNERS[config.agent]
    intervention = make_intervention(config.intervention)
    # The intervention may change the learner (myopia's discount); the user's --set wins.
    overrides = {**intervention.learner_overrides(config.agent), **config.learner_overrides}
    resolved = {**learner.defaults, **overrides}
    _write_json(
        run_dir / "config.json",
        {
            "config": config.to_dict(),
            "learner": {
                "name": learner.name,
                "n_envs": learner.n_envs,
                "hyperparameters": resolved,
            },
            "intervention": intervention.to_dict(),
            "versions": package_versions(),
        },
    )

    # 1. The training worlds, as the learner sees them under the intervention.
    env = make_vec_env(
        config.env_id,
        n_envs=learner.n_envs,
        seed=config.seed,
        env_kwargs={"observation": config.observation, **config.world_rules},
        wrapper_class=intervention.wrap,
    )
    # 2. The learner, logging to TensorBoard in the run's folder.
    model = make_model(
        config.agent,
        env,
        seed=config.seed,
        tensorboard_log=str(run_dir / "tensorboard"),
        overrides=overrides,
    )
    metrics_cb = SafetyMetricsCallback()
    callbacks: list[BaseCallback] = [metrics_cb, *intervention.callbacks()]
    if progress is not None:
        callbacks.append(_QueueProgress(progress, config.run_name))
    # 3. Training.
    start = time.perf_counter()
    model.learn(config.steps, callback=CallbackList(callbacks), tb_log_name="run")
    train_seconds = time.perf_counter() - start
    env.close()
    model.save(run_dir / "model.zip")

    # 4. Evaluation on the bare world: same task reward and measures for everyone.
    evaluation = evaluate(
        model,
        lambda: gym.make(config.env_id, observation=config.observation, **config.world_rules),
        n_episodes=config.eval_episodes,
        seed=config.eval_seed,
    )
    metrics = {
        "run": config.run_name,
        "config": config.to_dict(),
        "train_seconds": round(train_seconds, 2),
        "steps_per_second": round(config.steps / train_seconds),
        "evaluation": evaluation,
        "curve": metrics_cb.curve,
    }
    _write_json(run_dir / "metrics.json", metrics)
    if progress is not None:
        progress.put((config.run_name, None))
    return metrics


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=True))
    tmp.replace(path)  # a crash never leaves half a file behind


class _QueueProgress(BaseCallback):
    """Reports ``(run_name, timesteps)`` to a queue after every rollout."""

    def __init__(self, sink: Any, name: str) -> None:
        super().__init__()
        self.sink, self.name = sink, name

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.sink.put((self.name, self.num_timesteps))


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
