"""Sweeps on a Ray cluster: the same experiment files, the same folders, the same guarantees.

Imported only for ``--backend ray`` (``pip install "offswitch[ray]"``). Each job of a sweep
(one run, or one seed group of a seed-batched learner, as
:func:`~offswitch.experiments.running.runs.plan_jobs` makes them) is one Ray task that asks for one
CPU (training uses one torch thread). The task calls
:func:`~offswitch.experiments.running.runs.execute_job`, as the local pool's workers do, so a run is
written exactly as locally: trained in a scratch folder beside its final place and
published whole with its completion marker (:mod:`offswitch.experiments.results.store`). The output
folder must therefore be the same path on every node (a shared file system); relative paths
(``--out``, a layout file) are taken from the folder the command was started in, which the
task enters when that folder exists on its node.

The command that starts the sweep (the driver) holds the output folder's lock, removes dead
runs' scratch folders, checks finished runs and plans the jobs, as with the local backend.
Tasks report progress to a small actor; the driver drains it into the same ``on_progress``
callback.

When a worker process or a node dies under a task, Ray runs the task again (up to
:data:`RETRIES` times, elsewhere if the node is gone). The new attempt looks up which of its
runs the dead one already published and leaves them alone, and trains the rest in fresh
scratch folders: a run is published whole or not at all, never twice. If a task still fails
that way after its retries, the sweep goes on with the other jobs and then raises
:class:`~offswitch.experiments.running.backends.RunsLost`; the next run of the same file trains
what was lost. A Python error in a run fails the sweep with that error, as locally; Ctrl-C
cancels the tasks and raises :class:`~offswitch.experiments.running.backends.Interrupted`.
Finished runs are always kept.

This module imports the backends' common parts from
:mod:`offswitch.experiments.running.backends` and :mod:`offswitch.experiments.running.runs`,
never the runner, which imports this module only for ``--backend ray``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from offswitch.experiments.results import store
from offswitch.experiments.running.backends import (
    Backend,
    BackendError,
    Interrupted,
    ProgressFn,
    RunsLost,
    default_workers,
)
from offswitch.experiments.running.runs import Job, execute_job

RETRIES = 2
"""Times Ray runs a job again after its worker or node died under it."""
PROGRESS_EVERY = 0.2
"""Seconds between a task's progress messages (a run's end is always sent at once)."""
POLL = 0.2
"""Seconds the driver waits for finished tasks before it shows progress again."""
PROGRESS_WAIT = 5.0
"""Seconds a task or the driver waits for the progress actor (restarting, say) at most."""
CANCEL_WAIT = 10.0
"""Seconds the driver waits, after Ctrl-C, for cancelled tasks to stop."""


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ProgressBox:
    """Collects the tasks' ``(run, fraction)`` messages until the driver takes them. It lives
    on the driver's node where it can, and is restarted (empty) if its node dies anyway:
    progress is for show, and a lost message never fails a run."""

    def __init__(self) -> None:
        self._events: list[tuple[str, float | None]] = []

    def put(self, events: list[tuple[str, float | None]]) -> None:
        self._events.extend(events)

    def take(self) -> list[tuple[str, float | None]]:
        events, self._events = self._events, []
        return events


class ProgressSink:
    """A task's end of the progress channel, with the local queue's ``put((run, fraction))``.
    Fractions are sent at most every :data:`PROGRESS_EVERY` seconds, without waiting; a run's
    ``(run, None)`` is sent at once and waited for, so the driver has it before the task's
    result (an actor runs one caller's messages in order)."""

    def __init__(self, box: Any) -> None:
        self.box = box
        self._held: dict[str, float] = {}
        self._sent = 0.0

    def put(self, item: tuple[str, float | None]) -> None:
        name, done = item
        if done is not None:
            self._held[name] = done
            if time.monotonic() - self._sent >= PROGRESS_EVERY:
                self._send(wait=False)
            return
        self._held.pop(name, None)
        self._send(wait=True, last=(name, None))

    def _send(self, wait: bool, last: tuple[str, None] | None = None) -> None:
        events: list[tuple[str, float | None]] = list(self._held.items())
        if last is not None:
            events.append(last)
        self._held, self._sent = {}, time.monotonic()
        if events:
            sent = self.box.put.remote(events)
            if wait:
                with contextlib.suppress(RayError):  # (a timeout is one too)
                    ray.get(sent, timeout=PROGRESS_WAIT)


@ray.remote(num_cpus=1)
def train_job(job: Job, sink: ProgressSink | None, cwd: str) -> None:
    """One job, as a Ray task (its worker's process title is ``ray::train_job``)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths mean what they mean to the command that started it
    else:
        relative = [str(d) for d in job.run_dirs if not Path(d).is_absolute()]
        relative += [c.layout for c in job.configs if c.layout and not Path(c.layout).is_absolute()]
        if relative:
            raise BackendError(
                f"{relative[0]} is a relative path and {cwd}, the folder the sweep was started "
                f"in, is not on node {socket.gethostname()}: give --out (and layout files) as "
                "absolute paths on a file system every node shares"
            )
    execute_job(job, sink)


class RayBackend(Backend):
    """Jobs as Ray tasks on the cluster at ``address`` (``auto``, ``HOST:PORT``,
    ``ray://HOST:PORT``; default ``$RAY_ADDRESS``, else a Ray instance started on this machine
    for the sweep, with ``workers`` CPUs). ``workers`` also caps the tasks submitted at once
    (default: all, and the cluster runs as many as it has CPUs for). A process that has
    already called ``ray.init`` keeps its connection."""

    name = "ray"

    def __init__(
        self, address: str | None = None, workers: int | None = None, retries: int = RETRIES
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers
        self.retries = retries
        self._started = False

    def describe(self, runs: int) -> str:
        if ray.is_initialized():
            where = "the connected Ray cluster"
        elif self.address is None:
            where = f"a Ray instance started here with {self.workers or default_workers()} CPUs"
        else:
            where = f"the Ray cluster at {self.address}"
        return f"as Ray tasks of one CPU each, on {where}"

    def execute(self, jobs: Sequence[Job], on_progress: ProgressFn | None = None) -> None:
        pending = [job for job in jobs if not all(job.done)]
        if not pending:
            return
        self.connect()
        try:
            self._run(jobs, pending, on_progress)
        finally:
            self.close()

    def connect(self) -> None:
        """Connect to the cluster (or start a Ray instance here), unless this process already
        is connected: then that connection is used, and left open."""
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if self.address is None:
            options.update(
                address="local",
                num_cpus=self.workers or default_workers(),
                include_dashboard=False,
            )
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            said = (str(err).strip().splitlines() or [type(err).__name__])[0]
            where = f"the Ray cluster at --address {self.address}" if self.address else "Ray"
            raise BackendError(
                f"could not start or reach {where} ({said}): start one with `ray start --head`, "
                "or leave --address out to start one here; a ray:// address of a cluster with "
                "token authentication needs RAY_AUTH_MODE=token (docs/ray.md)"
            ) from None
        self._started = True

    def close(self) -> None:
        if self._started:
            ray.shutdown()
            self._started = False

    def _run(
        self, jobs: Sequence[Job], pending: Sequence[Job], on_progress: ProgressFn | None
    ) -> None:
        total = sum(len(job.configs) for job in jobs)
        box = _progress_box() if on_progress is not None else None
        sink = ProgressSink(box) if box is not None else None
        reported: set[str] = set()

        def drain() -> None:
            if box is None or on_progress is None:
                return
            try:
                events = ray.get(box.take.remote(), timeout=PROGRESS_WAIT)
            except RayError:  # its node died: it restarts; the ends it lost are made good below
                return
            for name, done in events:
                if done is None:
                    reported.add(name)
                on_progress(name, done)

        task = train_job.options(max_retries=self.retries, retry_exceptions=False)
        cwd = os.getcwd()
        waiting = list(pending)
        running: dict[Any, Job] = {}
        limit = self.workers or len(waiting)
        lost: list[tuple[Job, RayError]] = []
        # Ctrl-C as a flag, acted on between Ray calls: a KeyboardInterrupt raised inside
        # ray.wait or ray.get can be lost there (seen: a sweep that ran on to the end).
        stop = threading.Event()
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set()) if main else None
        try:
            while waiting or running:
                if stop.is_set():
                    raise KeyboardInterrupt
                while waiting and len(running) < limit:
                    job = waiting.pop(0)
                    running[task.remote(job, sink, cwd)] = job
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL)
                drain()
                if stop.is_set():
                    raise KeyboardInterrupt
                for ref in ready:
                    job = running.pop(ref)
                    try:
                        ray.get(ref)
                    except RayTaskError as err:  # the run's own error fails the sweep
                        cause = getattr(err, "cause", None)
                        raise (cause if isinstance(cause, BaseException) else err) from err
                    except RayError as err:  # its worker or node died, every attempt
                        lost.append((job, err))
            drain()
            if stop.is_set():
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            _cancel(running)
            finished = sum(store.is_complete(d) for job in jobs for d in job.run_dirs)
            raise Interrupted(finished, total) from None
        except BaseException:
            _cancel(running)
            raise
        finally:
            if main:
                signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            if box is not None:
                with contextlib.suppress(Exception):  # gone with its node, or with the cluster
                    ray.kill(box)
        # No attempt is running now: what dead attempts left is scratch, and a run that was
        # published just before its worker died is reported as finished all the same.
        for job in pending:
            for run_dir, was_done in zip(job.run_dirs, job.done):
                store.remove_scratch(run_dir)
                name = str(run_dir)
                missed = not was_done and name not in reported and store.is_complete(run_dir)
                if on_progress and missed:
                    on_progress(name, None)
        names = [str(d) for job, _ in lost for d in job.run_dirs if not store.is_complete(d)]
        if names:  # (a job whose worker died after publishing all its runs lost nothing)
            finished = sum(store.is_complete(d) for job in jobs for d in job.run_dirs)
            raise RunsLost(names, finished, total, type(lost[0][1]).__name__)


def _progress_box() -> Any:
    """A :class:`ProgressBox` on the driver's node if there is one (a worker node's death
    does not take the progress display with it), else anywhere."""
    try:
        here = ray.get_runtime_context().get_node_id()
    except Exception:
        return ProgressBox.remote()
    strategy = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
    return ProgressBox.options(scheduling_strategy=strategy).remote()


def _cancel(running: dict[Any, Job]) -> None:
    """Cancel the tasks still running or queued and wait (a little) for them to stop, so that
    none publishes after the driver lets go of the output folder."""
    refs = list(running)
    for ref in refs:
        with contextlib.suppress(Exception):  # already finished, or gone with its node
            ray.cancel(ref, force=True)
    if refs:
        with contextlib.suppress(Exception):
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT)
