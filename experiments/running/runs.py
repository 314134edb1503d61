"""Training runs: one run top to bottom, seed groups, and the jobs a backend runs.

A run is built (learner, world, intervention), trained, evaluated on the bare world and
written: ``config.json`` (the configuration, the learner's resolved hyperparameters, the
intervention, package versions and the code's commit), ``metrics.json`` (the evaluation of
both policies and the learning curve), the trained agent and TensorBoard logs, then the
completion marker ``done.json``. It is trained in a scratch folder and moved into place whole
(:mod:`offswitch.experiments.results.store`), so a run folder is always complete.

Learners that train seeds together (:class:`~offswitch.agents.training.SeedBatchedLearner`)
get the seeds of a condition as fixed groups of up to :data:`SEEDS_PER_PROCESS`, the same
whatever the number of workers or what was already finished, so results do not depend on
how a sweep was run. Each group, or each run of another learner, is a :class:`Job`
(:func:`plan_jobs`), and every backend (:mod:`offswitch.experiments.running.backends`) trains a job
in its worker with :func:`execute_job`, the same code.

A run trained in phases (:attr:`~offswitch.experiments.spec.config.TrainConfig.phases`) is one run:
the same learner continues through its phases (``start_phase``), its learning curve runs on
in cumulative steps with each point's ``phase``, each phase ends with an evaluation on the
bare world (``metrics["phases"]``; the last one is the run's ``evaluation``), and it is
written and marked complete once, at the end.

This module is the bottom of the runner's layers: the backends import it, and
:mod:`offswitch.experiments.running.runner` imports both; nothing here imports either.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offswitch.agents.evaluation import evaluate, evaluate_pool, random_splits
from offswitch.agents.interventions import Intervention
from offswitch.agents.learners import learner_class, learner_declared
from offswitch.agents.metrics import EpisodeRecord, measure_summary
from offswitch.agents.training import Budget, TrainingHooks, write_scalars
from offswitch.envs.engine import TabularWorld
from offswitch.experiments.results import store
from offswitch.experiments.spec.config import (
    ResolvedPhase,
    ResolvedRun,
    TrainConfig,
    package_versions,
)

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


def _config_record(
    run: ResolvedRun, config: TrainConfig, member: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """What ``config.json`` holds: the configuration and everything it resolved into."""
    budget = run.budget
    record = {
        "config": config.to_dict(),
        "budget": {"steps": budget.steps, "episodes": budget.episodes},
        "learner": member.describe(),
        "intervention": run.phases[0].intervention.to_dict(),
        "versions": package_versions(),
        "code": store.code_version(),
        **extra,
    }
    if run.phased:  # what each phase trained with; "learner" describes the last
        record["phases"] = [
            {
                "label": phase.label,
                "steps": phase.budget.steps,
                "intervention": phase.intervention.to_dict(),
                "hyperparameters": {**member.defaults, **phase.hyperparameters},
            }
            for phase in run.phases
        ]
    return record


def _phase_record(phase: ResolvedPhase, end: int, evaluation: dict | None) -> dict[str, Any]:
    """What ``metrics.json`` keeps of a phase: which, until when, and its evaluation."""
    return {
        "label": phase.label,
        "intervention": phase.intervention_text,
        "steps": phase.budget.steps,
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
    if config.family:  # every layout of every split: against the optimum, or DReST's measures
        family = world.family  # type: ignore[attr-defined]
        for policy, measures in evaluate_pool(member.predict, family, config.observation).items():
            evaluation[policy].update(measures)
    if phases is not None:
        phases[-1]["evaluation"] = evaluation
    film = references = None
    if extra.get("filmed"):  # what the page shows of the condition, while the agent is here
        from offswitch.experiments.results.episodes import film_layouts, film_run
        from offswitch.experiments.results.references import world_references

        if config.family:  # a pool's page films the agent on held-out layouts
            family = world.family  # type: ignore[attr-defined]
            film = film_layouts(member.predict, family, config.eval_seed, config.observation)
        else:
            film = film_run(scratch, evaluation)
        optimum = bool(extra.get("optimum_shown"))
        references = world_references(world, config.eval_episodes, config.eval_seed, optimum)
        if config.family:  # the random walk's level on every pool the agent is measured on
            references["layouts"] = random_splits(world.family)  # type: ignore[attr-defined]
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
        **({} if references is None else {"references": references}),
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
    ``out_dir/<run name>``), atomically: :func:`train_group` of one. ``progress``, if given,
    is a queue that receives ``(run, fraction done)`` after each rollout and ``(run, None)``
    when the run is written. Returns the metrics that ``metrics.json`` holds."""
    final = Path(run_dir) if run_dir is not None else Path(config.out_dir) / config.run_name
    (metrics,) = train_group([config], [final], progress, [extra or {}])
    assert metrics is not None
    return metrics


def train_group(
    configs: Sequence[TrainConfig],
    run_dirs: Sequence[Path],
    progress: Any = None,
    extras: Sequence[dict[str, Any]] | None = None,
    skip: Sequence[bool] | None = None,
) -> list[dict[str, Any] | None]:
    """Train runs that differ only in their seed together, and write each (except those
    marked in ``skip``, already finished): the seeds of a seed-batched learner, or the one run
    of another learner. The configuration is resolved here, once, into the world, the
    interventions and the learner; each run is trained in a scratch folder, evaluated on the
    bare world and published whole."""
    run = configs[0].resolve()
    world, budget, declared = run.world, run.budget, run.learner
    if len(configs) > 1 and not declared.seed_batched:
        raise ValueError(f"{configs[0].agent} trains one seed at a time: give one run")
    extras = list(extras) if extras is not None else [{} for _ in configs]
    skip = list(skip) if skip is not None else [False] * len(configs)
    finals = [Path(d) for d in run_dirs]
    scratches = [store.scratch_dir(f) for f in finals]
    logs = [s / "tensorboard" for s in scratches]

    def interventions_of(phase: ResolvedPhase) -> list[Intervention]:
        # Each seed its own: an intervention may learn during training (a multiplier).
        return [phase.intervention] + [copy.deepcopy(phase.intervention) for _ in configs[1:]]

    interventions = interventions_of(run.phases[0])
    hyperparameters = run.phases[0].hyperparameters
    cls = learner_class(configs[0].agent)
    if declared.seed_batched:
        seeds = [c.seed for c in configs]
        learner = cls(world, interventions, seeds, hyperparameters, configs[0].observation, logs)
        members = [learner.member(k) for k in range(len(configs))]
    else:
        learner = cls(
            world,
            interventions[0],
            configs[0].seed,
            hyperparameters,
            configs[0].observation,
            logs[0],
        )
        members = [learner]
    if not declared.seed_batched:  # written first, as ever: a crash leaves what it trained
        store.write_json(
            scratches[0] / "config.json", _config_record(run, configs[0], learner, extras[0])
        )
    hooks = []
    for k, (intervention, final) in enumerate(zip(interventions, finals)):
        name = str(final)
        report = None if progress is None else (lambda done, n=name: progress.put((n, done)))
        hooks.append(RunHooks(world, intervention, budget, logs[k], report))
    phases: list[list[dict[str, Any]] | None] = [[] if run.phased else None for _ in configs]
    seconds = 0.0
    for i, phase in enumerate(run.phases):
        if i:
            interventions = interventions_of(phase)
            arg = interventions if declared.seed_batched else interventions[0]
            learner.start_phase(arg, phase.hyperparameters)
        if run.phased:
            for hook, intervention in zip(hooks, interventions):
                hook.start_phase(i, intervention)
        start = time.perf_counter()
        learner.train(phase.budget, hooks if declared.seed_batched else hooks[0])
        seconds += time.perf_counter() - start
        if run.phased:
            last = i == len(run.phases) - 1
            for k, config in enumerate(configs):
                evaluation = None
                if not last and not skip[k]:
                    evaluation = _evaluate_phase(config, members[k], world)
                end = int(getattr(learner, "steps", 0))
                phases[k].append(_phase_record(phase, end, evaluation))
    results: list[dict[str, Any] | None] = []
    if declared.seed_batched:
        steps = budget.steps * len(configs) if budget.steps else None
    else:
        steps = getattr(learner, "steps", None) or budget.steps
    for k, config in enumerate(configs):
        hooks[k].close()
        if skip[k]:  # finished before: trained again only for the group's sake
            shutil.rmtree(scratches[k], ignore_errors=True)
            results.append(None)
            continue
        if declared.seed_batched:
            record = _config_record(run, config, members[k], extras[k])
            record["trained_with_seeds"] = [c.seed for c in configs]
            store.write_json(scratches[k] / "config.json", record)
        results.append(
            _finish(
                config,
                scratches[k],
                finals[k],
                members[k],
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
    return train_group(job.configs, job.run_dirs, sink, job.extras, done)


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
            seedless = config.with_seed(0)
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
