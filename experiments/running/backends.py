"""Where a sweep's jobs run: the :class:`Backend` interface and the local process pool.

A backend trains :class:`~offswitch.experiments.running.runs.Job` s: :class:`LocalBackend` (a
process pool on this machine, the default) or, with Ray installed, ``RayBackend`` (Ray tasks on a
cluster, in :mod:`offswitch.experiments.running.ray_backend`). Either way the command holds the
output folder's lock and every run is written by
:func:`~offswitch.experiments.running.runs.execute_job` in the worker, the same code. The errors a
sweep ends with (:class:`Interrupted`, :class:`RunsLost`, :class:`BackendError`) are defined here,
for every backend.
The local pool's workers end with the command that started them, even when it is killed
outright (:mod:`offswitch.experiments.running.processes`); they report progress on a queue handed to
them as they start.

The layers: :mod:`~offswitch.experiments.running.runs` (training) below this module, the Ray backend
beside it (it imports this one), and :mod:`~offswitch.experiments.running.runner` (which picks a
backend and runs experiments) above both.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from offswitch.experiments.results import store
from offswitch.experiments.running.processes import die_with_parent
from offswitch.experiments.running.runs import Job, execute_job

ProgressFn = Callable[[str, "float | None"], None]
"""Called with ``(run, fraction of the budget done)``, and ``(run, None)`` once it is written."""


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class Interrupted(Exception):
    """Ctrl-C stopped a sweep; ``finished`` runs are kept, the others can be resumed."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"stopped: {finished} of {total} runs finished")
        self.finished, self.total = finished, total


class RunsLost(Exception):
    """Workers (or whole machines) died under some runs, which were not redone: the sweep went
    on without them. ``finished`` runs are kept; running the same experiment again trains the
    ``lost`` ones."""

    def __init__(self, lost: Sequence[str], finished: int, total: int, reason: str) -> None:
        super().__init__(
            f"{len(lost)} runs lost when their workers died ({reason}); "
            f"{finished} of {total} runs finished"
        )
        self.lost, self.finished, self.total, self.reason = list(lost), finished, total, reason


class BackendError(RuntimeError):
    """A backend that cannot be used as asked (not installed, no cluster at the address); the
    message says what to do. Raised before anything is trained."""


class Backend:
    """Where a sweep's jobs run. :meth:`execute` runs every job that has an unfinished
    member, reports ``(run, fraction)`` and ``(run, None)`` to ``on_progress`` in the calling
    process, returns once all are finished, and raises :class:`Interrupted` on Ctrl-C (finished
    runs kept, the rest stopped). Runs are written by
    :func:`~offswitch.experiments.running.runs.execute_job` in the worker, as a
    scratch folder published whole; the caller holds the output folder's lock."""

    name = "?"

    def prepare(self) -> None:
        """Start what takes time and needs no experiment yet (a local pool's workers), so that
        it overlaps with reading the experiment; :meth:`close` lets go of it."""

    def connect(self) -> None:
        """Get ready to run jobs (start or join a cluster); :class:`BackendError` if it cannot.
        :meth:`execute` does it too; a command calls it first to fail or print early."""

    def close(self) -> None:
        """Let go of what :meth:`connect` started."""

    def execute(self, jobs: Sequence[Job], on_progress: ProgressFn | None = None) -> None:
        raise NotImplementedError

    def describe(self, runs: int) -> str:
        """Where ``runs`` runs will train, for the line a command prints first."""
        raise NotImplementedError


class LocalBackend(Backend):
    """Processes of this machine: a spawn process pool, ``workers`` at a time (default: one
    per core). :meth:`prepare` starts the pool early, so that its workers import torch and
    the learners while the command still checks its output folder and sets up."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        self.pool: LocalPool | None = None

    def prepare(self) -> None:
        if self.pool is None:
            self.pool = LocalPool(self.workers or default_workers())

    def execute(self, jobs: Sequence[Job], on_progress: ProgressFn | None = None) -> None:
        pool, self.pool = self.pool, None  # a pool serves one sweep: its end shuts it down
        execute_jobs(jobs, self.workers, on_progress, pool)

    def close(self) -> None:
        if self.pool is not None:  # started and never used (the command stopped before)
            self.pool.terminate()
            self.pool = None

    def describe(self, runs: int) -> str:
        return f"on up to {min(self.workers or default_workers(), runs)} processes"


_PROGRESS: Any = None
"""In a pool worker: the queue its runs report progress to (set by :func:`_start_worker`)."""


def _start_worker(parent: int, progress: Any) -> None:
    """A pool worker's first act: end with the command (:func:`die_with_parent`), keep the
    progress queue, and import what training needs, while the command reads its experiment."""
    global _PROGRESS
    die_with_parent(parent)
    _PROGRESS = progress
    import offswitch.agents.batched_ppo  # noqa: F401  (torch, the default learner)
    import offswitch.experiments.running.runs  # noqa: F401


def _run_job(job: Job) -> list[dict[str, Any] | None]:
    return execute_job(job, _PROGRESS)


class LocalPool:
    """A spawn process pool of ``workers`` processes, each started by :func:`_start_worker`,
    with the queue they report progress to (handed over at their start, as a
    ``multiprocessing`` queue must be: no manager process needed)."""

    def __init__(self, workers: int) -> None:
        # spawn, not fork: a forked child of a process that already ran torch can hang in
        # OpenMP. Scripts that call this need the `if __name__ == "__main__":` guard.
        ctx = mp.get_context("spawn")
        self.progress = ctx.Queue()
        # Every process started here ends with this one, even if it is killed with SIGKILL.
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(os.getpid(), self.progress),
        )
        # Start every worker now (the pool starts them one submission at a time otherwise).
        for _ in range(workers):
            self.executor.submit(int)

    def terminate(self) -> None:
        """Stop at once (Ctrl-C): the workers are killed, not waited for."""
        # The workers first: shutdown() forgets them (its _processes becomes None).
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.progress.close()


def execute_jobs(
    jobs: Sequence[Job],
    workers: int | None = None,
    on_progress: ProgressFn | None = None,
    pool: LocalPool | None = None,
) -> None:
    """Run every job that has an unfinished member, ``workers`` processes at a time (default:
    one per core), on ``pool`` if one was started (:meth:`LocalBackend.prepare`); finished
    runs are not retrained. Raises :class:`Interrupted` on Ctrl-C."""
    pending = [job for job in jobs if not all(job.done)]
    if not pending:
        if pool is not None:
            pool.shutdown()
        return
    if pool is None:
        pool = LocalPool(min(workers or default_workers(), len(pending)))
    total = sum(len(j.configs) for j in jobs)
    sink = pool.progress if on_progress else None
    try:
        futures: dict[Future, Job] = {pool.executor.submit(_run_job, job): job for job in pending}
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(sink, on_progress)
            for future in done:
                future.result()  # a failed run fails the sweep, with its own error
        _drain(sink, on_progress)
    except KeyboardInterrupt:
        pool.terminate()
        finished = sum(store.is_complete(d) for j in jobs for d in j.run_dirs)
        raise Interrupted(finished, total) from None
    finally:
        pool.shutdown()


def _drain(sink: Any, on_progress: ProgressFn | None) -> None:
    if sink is None or on_progress is None:
        return
    while True:
        try:
            name, done = sink.get_nowait()
        except queue.Empty:
            return
        on_progress(name, done)
