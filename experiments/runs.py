"""Training runs: one run top to bottom, seed groups, and the jobs a backend runs.

A run is built (learner, world, intervention), trained, evaluated on the bare world and
written: ``config.json`` (the configuration, the learner's resolved hyperparameters, the
intervention, package versions and the code's commit), ``metrics.json`` (the evaluation of
both policies and the learning curve), the trained agent and TensorBoard logs, then the
completion marker ``done.json``. It is trained in a scratch folder and moved into place whole
(:mod:`offswitch.experiments.store`), so a run folder is always complete.

Learners that train seeds together (:class:`~offswitch.agents.training.SeedBatchedLearner`)
get the seeds of a condition as fixed groups of up to :data:`SEEDS_PER_PROCESS`, the same
whatever the number of workers or what was already finished, so results do not depend on
how a sweep was run. Each group, or each run of another learner, is a :class:`Job`
(:func:`plan_jobs`), and every backend (:mod:`offswitch.experiments.backends`) trains a job
in its worker with :func:`execute_job`, the same code.

A run trained in phases (:attr:`~offswitch.experiments.config.TrainConfig.phases`) is one run:
the same learner continues through its phases (``start_phase``), its learning curve runs on
in cumulative steps with each point's ``phase``, each phase ends with an evaluation on the
bare world (``metrics["phases"]``; the last one is the run's ``evaluation``), and it is
written and marked complete once, at the end.

This module is the bottom of the runner's layers: the backends import it, and
:mod:`offswitch.experiments.runner` imports both; nothing here imports either.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offswitch.agents.evaluation import evaluate
from offswitch.agents.interventions import Intervention, make_intervention
from offswitch.agents.learners import learner_class, learner_declared
from offswitch.agents.metrics import EpisodeRecord, measure_summary
from offswitch.agents.training import Budget, Learner, TrainingHooks, write_scalars
from offswitch.envs.engine import TabularWorld
from offswitch.experiments import store
from offswitch.experiments.config import Phase, TrainConfig, package_versions

SEEDS_PER_PROCESS = 10
"""Seeds a seed-batched learner trains together in one process, at most."""

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
        self.phase: int | None = None
        """The phase (from 0) of a run trained in phases, recorded in each curve point."""
        self._reported = 0.0
        self._writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir))

    def rollout_end(self, episodes: Sequence[EpisodeRecord], timesteps: int) -> None:
        scalars = dict(self.intervention.on_rollout_end(episodes))
        self.episodes += len(episodes)
        if episodes:
            summary = measure_summary(episodes, self.world)
            # The summary's own "episodes" counts this point's; the total is kept beside it.
            point = {**summary, "timesteps": timesteps, "episodes_total": self.episodes}
            if self.phase is not None:
                point["phase"] = self.phase
            self.curve.append(point)
            scalars.update({tag: summary[key] for key, tag in SCALARS.items()})
            scalars.update(
                {f"reward/{k[5:]}": v for k, v in summary.items() if k.startswith("term/")}
            )
        if self._writer is not None and scalars:
            write_scalars(self._writer, scalars, timesteps)
        if self.progress is not None:
            if self.budget.steps:
                done = timesteps / self.budget.steps
            else:
                done = self.episodes / self.budget.episodes
            done = min(done, 1.0)
            # A hundredth at a time: a message per rollout would cost more than the rollout.
            if done >= 1.0 or done - self._reported >= 0.01:
                self._reported = done
                self.progress(done)

    def start_phase(self, index: int, intervention: Intervention) -> None:
        """Log phase ``index`` (from 0), trained under ``intervention``, from now on."""
        self.phase, self.intervention = index, intervention

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _overrides(config: TrainConfig, intervention: Intervention) -> dict[str, Any]:
    # The intervention may change the learner (myopia's discount); the user's --set wins.
    return {**intervention.learner_overrides(config.agent), **config.learner_overrides}


def build(config: TrainConfig, log_dir: Path | None = None) -> tuple[Learner, TabularWorld]:
    """The configured learner (one seed), untrained, and the tables of its world."""
    world = config.world()
    intervention = make_intervention(config.intervention)
    plan = config.phase_plan()
    overrides = _overrides(config, intervention)
    if plan is not None:  # the first phase's settings
        overrides = _phase_overrides(config, intervention, plan[0])
    learner = learner_class(config.agent)(
        world,
        intervention,
        config.seed,
        overrides,
        config.observation,
        log_dir,
    )
    return learner, world


def _config_record(config: TrainConfig, learner: Any, budget: Budget, extra: dict) -> dict:
    record = {
        "config": config.to_dict(),
        "budget": {"steps": budget.steps, "episodes": budget.episodes},
        "learner": learner.describe(),
        "intervention": make_intervention(config.intervention).to_dict(),
        "versions": package_versions(),
        "code": store.code_version(),
        **extra,
    }
    plan = config.phase_plan()
    if plan is not None:  # what each phase trained with; "learner" describes the last
        record["phases"] = [
            {
                "label": phase.label,
                "steps": phase.steps,
                "intervention": make_intervention(phase.intervention).to_dict(),
                "hyperparameters": {
                    **learner.defaults,
                    **_phase_overrides(config, make_intervention(phase.intervention), phase),
                },
            }
            for phase in plan
        ]
    return record


def _phase_overrides(config: TrainConfig, intervention: Intervention, phase: Phase) -> dict:
    """A phase's hyperparameters: the run's (:func:`_overrides`), then the phase's own."""
    return {**_overrides(config, intervention), **phase.hyperparameters}


def _phase_record(phase: Phase, end: int, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """What ``metrics.json`` keeps of a phase: which, until when, and its evaluation."""
    return {
        "label": phase.label,
        "intervention": phase.intervention,
        "steps": phase.steps,
        "end": end,
        "evaluation": evaluation,
    }


def _finish(
    config: TrainConfig,
    scratch: Path,
    final: Path,
    member: Any,
    world: TabularWorld,
    hooks: RunHooks,
    train_seconds: float,
    steps: int | None,
    extra: dict[str, Any],
    phases: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained agent on the bare world, write its run and publish it. ``phases``
    (a run trained in phases): their records, the last one's evaluation still to come."""
    member.save(scratch)
    visits: dict[str, Any] = {}
    evaluation = evaluate(
        member.predict, world, config.eval_episodes, config.eval_seed, config.observation, visits
    )
    if phases is not None:
        phases[-1]["evaluation"] = evaluation
    film = None
    if extra.get("filmed"):  # the episodes the page's GIFs show, while the agent is here
        from offswitch.experiments.replay import film_run

        film = film_run(scratch, evaluation)
    metrics = {
        "run": store.run_record(final, extra.get("condition") is not None),
        "config": config.to_dict(),
        "train_seconds": round(train_seconds, 2),
        "steps_per_second": round(steps / train_seconds) if steps and train_seconds else None,
        "evaluation": evaluation,
        "curve": hooks.curve,
        "visits": {policy: counts.tolist() for policy, counts in visits.items()},
        **({} if phases is None else {"phases": phases}),
        **({} if film is None else {"film": film}),
        **extra,
    }
    store.write_json(scratch / "metrics.json", metrics)
    marker = {"config": comparable_config(config), "seed": config.seed, **extra}
    store.publish(scratch, final, marker)
    return metrics


def comparable_config(config: TrainConfig) -> dict[str, Any]:
    """What must match for a finished run to count as a run of a configuration."""
    record = config.to_dict()
    record.pop("out_dir")
    return record


def _evaluate_phase(config: TrainConfig, member: Any, world: TabularWorld) -> dict[str, Any]:
    """The evaluation at the end of a phase, as the run's final one (no visit counts)."""
    return evaluate(
        member.predict, world, config.eval_episodes, config.eval_seed, config.observation
    )


def train_one(
    config: TrainConfig,
    progress: Any = None,
    run_dir: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build, train, evaluate and write one run into ``run_dir`` (default
    ``out_dir/<run name>``), atomically. ``progress``, if given, is a queue that receives
    ``(run, fraction done)`` after each rollout and ``(run, None)`` when the run is written.
    Returns the metrics that ``metrics.json`` holds."""
    config.validate()
    final = Path(run_dir) if run_dir is not None else Path(config.out_dir) / config.run_name
    name = str(final)
    scratch = store.scratch_dir(final)
    budget = config.budget()
    learner, world = build(config, scratch / "tensorboard")
    store.write_json(scratch / "config.json", _config_record(config, learner, budget, extra or {}))
    report = None if progress is None else (lambda done: progress.put((name, done)))
    hooks = RunHooks(world, learner.intervention, budget, scratch / "tensorboard", report)
    plan = config.phase_plan()
    phases: list[dict[str, Any]] | None = None
    if plan is None:
        start = time.perf_counter()
        learner.train(budget, hooks)
        seconds = time.perf_counter() - start
    else:
        phases, seconds = [], 0.0
        for i, phase in enumerate(plan):
            if i:
                intervention = make_intervention(phase.intervention)
                learner.start_phase(intervention, _phase_overrides(config, intervention, phase))
            hooks.start_phase(i, learner.intervention)
            start = time.perf_counter()
            learner.train(Budget(steps=phase.steps), hooks)
            seconds += time.perf_counter() - start
            last = i == len(plan) - 1
            evaluation = None if last else _evaluate_phase(config, learner, world)
            phases.append(_phase_record(phase, int(getattr(learner, "steps", 0)), evaluation))
    hooks.close()
    steps = getattr(learner, "steps", None) or budget.steps
    metrics = _finish(
        config, scratch, final, learner, world, hooks, seconds, steps, extra or {}, phases
    )
    if progress is not None:
        progress.put((name, None))
    return metrics


def train_group(
    configs: Sequence[TrainConfig],
    run_dirs: Sequence[Path],
    progress: Any = None,
    extras: Sequence[dict[str, Any]] | None = None,
    skip: Sequence[bool] | None = None,
) -> list[dict[str, Any] | None]:
    """Train runs that differ only in their seed together, with a seed-batched learner; write
    each (except those marked in ``skip``, already finished) as :func:`train_one` would."""
    first = configs[0].validate()
    extras = list(extras) if extras is not None else [{} for _ in configs]
    skip = list(skip) if skip is not None else [False] * len(configs)
    finals = [Path(d) for d in run_dirs]
    scratches = [store.scratch_dir(f) for f in finals]
    budget = first.budget()
    world = first.world()
    plan = first.phase_plan()
    interventions = [make_intervention(c.intervention) for c in configs]
    overrides = _overrides(first, interventions[0])
    if plan is not None:
        overrides = _phase_overrides(first, interventions[0], plan[0])
    learner = learner_class(first.agent)(
        world,
        interventions,
        [c.seed for c in configs],
        overrides,
        first.observation,
        [s / "tensorboard" for s in scratches],
    )
    hooks = []
    for k, (intervention, final) in enumerate(zip(interventions, finals)):
        name = str(final)
        report = None if progress is None else (lambda done, n=name: progress.put((n, done)))
        hooks.append(RunHooks(world, intervention, budget, scratches[k] / "tensorboard", report))
    phases: list[list[dict[str, Any]] | None] = [None] * len(configs)
    if plan is None:
        start = time.perf_counter()
        learner.train(budget, hooks)
        seconds = time.perf_counter() - start
    else:
        phases, seconds = [[] for _ in configs], 0.0
        for i, phase in enumerate(plan):
            if i:
                interventions = [make_intervention(phase.intervention) for _ in configs]
                learner.start_phase(interventions, _phase_overrides(first, interventions[0], phase))
            for hook, intervention in zip(hooks, interventions):
                hook.start_phase(i, intervention)
            start = time.perf_counter()
            learner.train(Budget(steps=phase.steps), hooks)
            seconds += time.perf_counter() - start
            for k, config in enumerate(configs):
                last = i == len(plan) - 1
                evaluation = None
                if not last and not skip[k]:
                    evaluation = _evaluate_phase(config, learner.member(k), world)
                phases[k].append(_phase_record(phase, int(learner.steps), evaluation))
    results: list[dict[str, Any] | None] = []
    for k, config in enumerate(configs):
        hooks[k].close()
        if skip[k]:  # finished before: trained again only for the group's sake
            shutil.rmtree(scratches[k], ignore_errors=True)
            results.append(None)
            continue
        member = learner.member(k)
        record = _config_record(config, member, budget, extras[k])
        record["trained_with_seeds"] = [c.seed for c in configs]
        store.write_json(scratches[k] / "config.json", record)
        steps = budget.steps * len(configs) if budget.steps else None
        results.append(
            _finish(
                config,
                scratches[k],
                finals[k],
                member,
                world,
                hooks[k],
                seconds,
                steps,
                extras[k],
                phases[k],
            )
        )
        if progress is not None:
            progress.put((str(finals[k]), None))
    return results


@dataclass
class Job:
    """Runs trained in one process: one run, or a seed group of a seed-batched learner."""

    configs: list[TrainConfig]
    run_dirs: list[Path]
    extras: list[dict[str, Any]]
    done: list[bool]
    """Members already finished (kept; a group recomputes them but does not rewrite them)."""

    @property
    def batched(self) -> bool:
        return learner_declared(self.configs[0].agent).seed_batched


def execute_job(job: Job, sink: Any) -> list[dict[str, Any] | None]:
    """Train a job's unfinished runs (in the process that calls it: a pool worker, a Ray
    task). What is finished is looked up again here, not only when the job was planned: a job
    that runs a second time (Ray retries a task whose worker died) leaves alone the runs its
    first attempt published, so a run is written once, whole."""
    done = [d or store.is_complete(r) for d, r in zip(job.done, job.run_dirs)]
    if all(done):
        return [None] * len(done)
    if job.batched:
        return train_group(job.configs, job.run_dirs, sink, job.extras, done)
    return [train_one(job.configs[0], sink, job.run_dirs[0], job.extras[0])]


def plan_jobs(
    runs: Sequence[tuple[TrainConfig, Path, dict[str, Any]]],
) -> list[Job]:
    """Jobs for ``runs`` (configuration, run folder, extra record), in order: runs of a
    seed-batched learner that differ only in their seed are grouped, in fixed chunks."""
    jobs: list[Job] = []
    groups: dict[str, list[tuple[TrainConfig, Path, dict]]] = {}
    order: list[str] = []
    for config, run_dir, extra in runs:
        if learner_declared(config.agent).seed_batched:
            seedless = TrainConfig(**{**config.to_dict(), "seed": 0})
            key = repr(sorted(comparable_config(seedless).items()))
        else:
            key = str(run_dir)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((config, run_dir, extra))
    for key in order:
        members = groups[key]
        for i in range(0, len(members), SEEDS_PER_PROCESS):
            chunk = members[i : i + SEEDS_PER_PROCESS]
            jobs.append(
                Job(
                    [c for c, _, _ in chunk],
                    [d for _, d, _ in chunk],
                    [e for _, _, e in chunk],
                    [store.is_complete(d) for _, d, _ in chunk],
                )
            )
    return jobs
