"""The command's processes (issue 20): workers die with the command that started them, however
it dies, and a closed pipe ends a command quietly.

Processes are read from /proc (Linux): pid, parent, start time (so that a pid used again by a
new process is not taken for the old one) and state (a zombie has ended).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offswitch.experiments.interactive import cli
from offswitch.experiments.results import store

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self" / "stat").is_file(), reason="needs /proc")

DEMO = [sys.executable, "-m", "offswitch.experiments.interactive.cli", "demo", "--workers", "2"]
DEMO_STEPS = ["--steps", "200000"]
"""A smaller budget than the demo's own: the same processes and files, sooner."""
NOT_COMPARED = ("train_seconds", "run")
"""results.csv columns that differ between two runs of the same experiment: time, folder."""


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) of process ``pid``, None if there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (name) "; a name may hold ")"
    return int(fields[1]), int(fields[19]), fields[0]


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` (children, their children...): pid -> start time."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        for pid, start in parents.get(frontier.pop(), []):
            if pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == start and stat[2] not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    except OSError:
        return "?"


def table(out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert rows
    return [{k: v for k, v in row.items() if k not in NOT_COMPARED} for row in rows]


@contextlib.contextmanager
def demo_in_training(out: Path) -> Iterator[tuple[subprocess.Popen, dict[int, int]]]:
    """``offswitch demo --out OUT`` started and waited for until its runs train: the command
    and the processes below it (pid -> start time). Whatever is left of it is killed after."""
    command = subprocess.Popen(
        [*DEMO, *DEMO_STEPS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the test can clean up after itself
    )
    try:
        # Until training is under way: the workers have made runs' scratch folders.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and command.poll() is None:
            if list(out.glob(f"*/*{store.PARTIAL}*")) and len(descendants(command.pid)) >= 3:
                break
            time.sleep(0.02)
        assert command.poll() is None, command.stderr.read().decode()
        below = descendants(command.pid)
        names = [command_line(pid) for pid in below]
        # The pool's 2 workers and the resource tracker (of the progress queue's lock).
        assert len(below) >= 3, names
        assert sum("resource_tracker" in n for n in names) == 1, names
        yield command, below
    finally:
        if command.poll() is None:
            command.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.pid, signal.SIGKILL)  # whatever the test failed to see go
        command.wait()
        command.stderr.close()


def assert_all_end(below: dict[int, int], within: float = 5.0) -> None:
    since = time.monotonic()
    while time.monotonic() - since < within and any(alive(p, s) for p, s in below.items()):
        time.sleep(0.01)
    left = [command_line(p) for p, s in below.items() if alive(p, s)]
    assert not left, f"alive {within} s after the command ended: {left}"


@needs_proc
@pytest.mark.training
def test_a_killed_demo_takes_its_workers_with_it_and_resumes_to_the_same_table(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run([*DEMO, *DEMO_STEPS, "--out", str(reference)], check=True, capture_output=True)
    out = tmp_path / "killed"
    with demo_in_training(out) as (command, below):
        os.kill(command.pid, signal.SIGKILL)  # the command only, not its group: no warning
        command.wait()
        assert_all_end(below)
    assert list(out.glob(f"*/*{store.PARTIAL}*"))  # the killed runs left only scratch
    subprocess.run([*DEMO, *DEMO_STEPS, "--out", str(out)], check=True, capture_output=True)
    assert not list(out.rglob(f"*{store.PARTIAL}*"))
    assert table(out) == table(reference)


@needs_proc
@pytest.mark.training
@pytest.mark.parametrize(
    ("signum", "to_group"),
    [
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGINT, False),  # kill -INT
        (signal.SIGINT, True),  # Ctrl-C at a terminal: the whole foreground group
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "Ctrl-C"],
)
def test_the_workers_end_with_the_command_whatever_ends_it(tmp_path, signum, to_group):
    with demo_in_training(tmp_path / "out") as (command, below):
        if to_group:
            os.killpg(command.pid, signum)
        else:
            os.kill(command.pid, signum)
        status = command.wait(timeout=60)
        assert_all_end(below)
        err = command.stderr.read().decode()  # (its end comes once every process has gone)
    if signum == signal.SIGINT:  # stopped cleanly, as it says
        assert status == 130, err
        assert re.search(r"stopped: \d+ of 20 runs finished", err), err
        assert "Traceback" not in err, err
    else:
        assert status == -signum, err


CHILD = """
import os, sys, time
from offswitch.experiments.running.processes import die_with_parent
die_with_parent(int(sys.argv[1]), use_prctl=sys.argv[2] == "prctl")
print("ready", flush=True)
time.sleep(60)
"""
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]])
print(child.pid, flush=True)
time.sleep(60)
"""


@needs_proc
@pytest.mark.parametrize("way", ["prctl", "polling"])
def test_a_worker_ends_when_its_parent_is_killed(way):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, way],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert parent.stdout.readline() == "ready\n"  # the child's, through the same pipe
        start = _stat(child)[1]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        killed = time.monotonic()
        while alive(child, start) and time.monotonic() - killed < 5:
            time.sleep(0.01)
        assert not alive(child, start)
        # At once by the kernel; within a poll (0.5 s) by the thread.
        assert time.monotonic() - killed < (1.0 if way == "prctl" else 2.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        parent.stdout.close()


@pytest.mark.parametrize("way", ["prctl", "polling"])
def test_a_worker_whose_parent_died_before_it_asked_ends_at_once(way):
    # Its parent is not the process it was told of: that one died before it could ask.
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(os.getpid() + 10**6), way],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "ready" not in done.stdout


# -- a closed pipe ------------------------------------------------------------------------------


def _offswitch(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "offswitch.experiments.interactive.cli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_a_list_into_a_pipe_closed_before_it_is_read_ends_quietly(unbuffered):
    # The reader is gone before the first line is written: as `offswitch list | head -0`,
    # or `| head -3` when head is done first. Buffered, the output meets the closed pipe in
    # the final flush; unbuffered, in the first print.
    command = _offswitch(["list"], PYTHONUNBUFFERED=unbuffered)
    command.stdin.close()
    command.stdout.close()
    err = command.stderr.read().decode()
    command.stderr.close()
    assert command.wait(timeout=60) == cli.CLOSED_PIPE_STATUS, err
    assert err == ""


def test_a_pipe_closed_after_a_few_bytes_ends_the_command_quietly():
    # `play` from a pipe of keys writes a frame per key: far more than a pipe holds, so the
    # command is still writing when the reader goes.
    command = _offswitch(["play", "offswitch/SafeInterruptibility-v0"])
    command.stdin.write(b"sw" * 5000 + b"q")
    command.stdin.close()
    assert len(command.stdout.read(10)) == 10
    command.stdout.close()
    err = command.stderr.read().decode()
    command.stderr.close()
    assert command.wait(timeout=60) == cli.CLOSED_PIPE_STATUS, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err == ""


def test_a_broken_pipe_that_is_not_the_output_is_an_error(monkeypatch):
    # A worker's pipe, say: stdout is fine, so the error is not taken for a closed reader.
    def broken(argv):
        raise BrokenPipeError("a pipe of the command's own")

    monkeypatch.setattr(cli, "_main", broken)
    with pytest.raises(BrokenPipeError, match="own"):
        cli.main(["list"])
