"""Worker processes that end with the command that started them, however it ends.

A command that trains starts processes of its own: the pool's workers (``multiprocessing``'s
resource tracker too, which leaves once
every process that writes to it has gone). Ctrl-C stops them cleanly, but a command killed
outright (``kill -9``, the out-of-memory killer, a closed terminal's session) runs no code at
all, and its workers would go on training for nobody. So each of them calls
:func:`die_with_parent` first thing (in the pool's initializer):

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment its
  parent dies. The parent may already have died before that call, so the parent's pid is
  checked right after it. (Strictly, the signal comes when the parent's *thread* that started
  the worker ends: the pool is started by the command's main thread, so for its workers that
  is the command's end);
- elsewhere (or where ``prctl`` fails), a daemon thread compares ``os.getppid()`` with the
  parent's pid every :data:`POLL_SECONDS` and ends the process when it has changed (an
  orphan is adopted by another process).

A worker killed this way leaves at most a run's scratch folder, never a run: a run is
published whole, in one rename (:mod:`offswitch.experiments.results.store`), and the next command on
the same folder removes the scratch and trains that run again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process gets when its parent dies."""
POLL_SECONDS = 0.5
"""How often the portable fallback looks for its parent."""
ORPHANED = 1
"""Exit status of a worker that found its parent gone."""


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False where that
    cannot be done (another system, no ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl(PR_SET_PDEATHSIG, signum, 0, 0) == 0


def watch_parent(parent: int, interval: float = POLL_SECONDS) -> threading.Thread:
    """Start a daemon thread that ends this process (``os._exit``, no clean-up: nothing is
    left to hand over) once its parent is no longer ``parent``."""

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(interval)
        os._exit(ORPHANED)

    thread = threading.Thread(target=watch, name="offswitch-parent-watch", daemon=True)
    thread.start()
    return thread


def die_with_parent(parent: int, use_prctl: bool = True) -> None:
    """End this process when ``parent`` (the pid of the process that started it) dies, at
    once if it already has. A process initializer: ``die_with_parent(os.getpid())`` is
    passed from the parent as ``initializer=die_with_parent, initargs=(os.getpid(),)``.
    ``use_prctl=False`` takes the portable way (for tests)."""
    if not (use_prctl and set_parent_death_signal()):
        watch_parent(parent)
    # After the request, not before: a parent that died in between is caught here.
    if os.getppid() != parent:
        os._exit(ORPHANED)
