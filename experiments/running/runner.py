"""Whole experiments: every run of a file, over the cores or a cluster, resumable.

:func:`run_experiment` runs an experiment's missing runs, keeps finished ones, refuses runs
whose recorded configuration differs from the file, and stops cleanly on Ctrl-C;
:func:`run_many` does the same for a list of configurations. How one run is trained and
written, and how seed-batched learners' seeds are grouped into jobs, is
:mod:`offswitch.experiments.running.runs`; where the jobs run is a backend
(:mod:`offswitch.experiments.running.backends`), chosen by :func:`make_backend`: the local process
pool, the default, or with Ray installed ``RayBackend``
(:mod:`offswitch.experiments.running.ray_backend`). Either way the command holds the output folder's
lock and every run is written by the same code, in the worker.

This module is the top of those layers: it imports them, and none of them imports it (the Ray
backend is imported only when asked for). The names that callers know from here (a run's
:func:`train_one`, the errors :func:`run_experiment` raises) are still importable from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offswitch.experiments.results import store
from offswitch.experiments.running.backends import (
    Backend,
    BackendError,
    Interrupted,
    LocalBackend,
    ProgressFn,
    RunsLost,
    execute_jobs,
)
from offswitch.experiments.running.runs import comparable_config, plan_jobs, train_one
from offswitch.experiments.spec.config import TrainConfig
from offswitch.experiments.spec.experiment import Experiment, is_map

__all__ = [
    "BACKENDS",
    "check_finished",
    "experiment_runs",
    "make_backend",
    "run_experiment",
    "run_many",
    # From the layers below, where callers have always found them: a single run, and the
    # errors that run_experiment raises.
    "BackendError",
    "Interrupted",
    "RunsLost",
    "train_one",
]

BACKENDS = ("local", "ray")


def make_backend(
    backend: str | Backend = "local", workers: int | None = None, address: str | None = None
) -> Backend:
    """The backend called ``backend`` (``local`` or ``ray``), or ``backend`` itself if it is
    one. Ray is imported only here, only for ``ray``; :class:`BackendError` if it is missing."""
    if isinstance(backend, Backend):
        return backend
    if backend == "local":
        if address is not None:
            raise BackendError("--address is for --backend ray; the local backend has none")
        return LocalBackend(workers)
    if backend == "ray":
        try:
            from offswitch.experiments.running.ray_backend import RayBackend
        except ModuleNotFoundError as err:
            if err.name is None or err.name.split(".")[0] != "ray":
                raise
            raise BackendError(
                '--backend ray needs Ray, which is not installed: pip install "offswitch[ray]"'
            ) from None
        return RayBackend(address=address, workers=workers)
    raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def run_many(
    configs: Sequence[TrainConfig],
    workers: int | None = None,
    on_progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Run every config into ``out_dir/<run name>`` (finished ones are kept) and return
    their metrics in the order of ``configs``."""
    for config in configs:
        config.validate()  # fail before any process starts
    runs = [(c, Path(c.out_dir) / c.run_name, {}) for c in configs]
    jobs = plan_jobs(runs)
    execute_jobs(jobs, workers, on_progress)
    return [store.read_record(d / "metrics.json") for _, d, _ in runs]


def experiment_runs(experiment: Experiment, out: Path) -> list[tuple[TrainConfig, Path, dict]]:
    """Every run of ``experiment``: its configuration, its folder
    ``out/<condition>/seed<k>`` and what it records of the experiment."""
    runs = []
    pairs = experiment.runs()
    first_seed: dict[str, int] = {}
    for condition, seed in pairs:
        first_seed[condition.label] = min(seed, first_seed.get(condition.label, seed))
    for condition, seed in pairs:
        config = dataclasses.replace(condition.run(seed), out_dir=str(out / condition.slug))
        extra = {
            "experiment": experiment.name,
            "condition": condition.label,
            "group": condition.group,
        }
        # A map's page shows no condition's episodes: filming 64 cells would cost minutes.
        if seed == first_seed[condition.label] and not is_map(experiment):
            extra["filmed"] = True  # the page's GIFs show each condition's first seed
            if "optimum" in (experiment.report or {}).get("columns", ()):
                extra["optimum_shown"] = True  # its table has the exact optimum
        runs.append((config, store.run_folder(out, condition.slug, seed), extra))
    return runs


def check_finished(runs: Sequence[tuple[TrainConfig, Path, dict]]) -> int:
    """How many of ``runs`` are finished; :class:`~offswitch.experiments.results.store.StoreError`
    if a finished run was made with another configuration than the one asked for now."""
    finished = 0
    for config, run_dir, _ in runs:
        for path in (run_dir.parent, run_dir):
            if path.exists() and not path.is_dir():
                raise store.StoreError(
                    f"{path} is a file, where a run's folder goes: move it away, or give "
                    "another --out"
                )
        if not store.is_complete(run_dir):
            continue
        try:
            recorded = store.read_record(run_dir / store.DONE).get("config", {})
        except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not a table
            raise store.StoreError(
                f"{run_dir / store.DONE} is not a completion marker this code wrote: delete "
                "that folder to train it again, or give another --out"
            ) from None
        wanted = comparable_config(config)
        differ = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        if differ:
            shown = ", ".join(
                f"{k}={recorded.get(k)!r} (now {wanted.get(k)!r})" for k in differ[:3]
            )
            raise store.StoreError(
                f"{run_dir} was trained with {shown}: give another --out for the new settings, "
                "or delete that folder to train it again"
            )
        finished += 1
    return finished


def run_experiment(
    experiment: Experiment,
    out: Path,
    workers: int | None = None,
    on_progress: ProgressFn | None = None,
    command: str = "",
    backend: str | Backend = "local",
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``experiment`` into ``out``: finished runs are kept, killed ones redone, the rest
    trained over ``workers`` processes, or as Ray tasks with ``backend="ray"`` (on the cluster
    at ``address``; see :mod:`offswitch.experiments.running.ray_backend`). Returns every run's
    metrics in the file's order.

    Raises :class:`BackendError` (the backend cannot be used) and
    :class:`~offswitch.experiments.results.store.StoreError` (another command holds ``out``, or a
    finished run's configuration differs from the file's) before training anything,
    :class:`Interrupted` on Ctrl-C and :class:`RunsLost` when workers died under runs that
    were not redone (finished runs are kept in both cases).
    """
    runner = make_backend(backend, workers, address)
    out = Path(out)
    # Checked before the lock too: a command refused here changes nothing in ``out``.
    check_finished(experiment_runs(experiment, out))
    with store.locked(out):
        store.remove_partials(out)
        runs = experiment_runs(experiment, out)
        check_finished(runs)
        store.write_json(
            out / "experiment.json",
            {
                "name": experiment.name,
                "title": experiment.title,
                "path": str(experiment.path) if experiment.path else None,
                "command": command,
                "file": experiment.source,
            },
        )
        runner.execute(plan_jobs(runs), on_progress)
        return [store.read_record(run_dir / "metrics.json") for _, run_dir, _ in runs]
