"""Where the wall time of ``offswitch demo`` (or ``compare``) goes, start-up included, beside a
reference commit, and whether the two give the same numbers.

Run: ``python benchmarks/demo_time.py [--command compare] [--reference COMMIT] [--repeat N]``.
Each measurement runs ``offswitch demo`` (or ``compare``; its ``main``) in a fresh process into a
fresh folder, as a newcomer would, and times the lines it prints on stderr; the runs' own records
give the training loop's seconds. With ``--reference``, the same is measured, in the same run of
this script, for another commit of this repository (a temporary ``git worktree``, imported ahead of
the installed checkout through ``PYTHONPATH``), so that the two columns come from one machine
at one time. Printed as a Markdown table, the median over ``--repeat`` runs of each:

* start-up: from the command to its first line (imports, reading and checking the
  experiment; this checkout's pool workers start meanwhile);
* training phase: from the first line to ``finished`` (the workers' start, training,
  evaluation, filming and saving every run), and within it the training loop alone (the
  slowest seed group's ``train_seconds``);
* every group's training loop, summed: the seconds of training the pool's workers share out
  (with ``W`` workers the training phase takes at least this over ``W``);
* report: from ``finished`` to the report written (tables, intervals, figures, GIFs);
* exit: from the report written to the process's end;
* total.

Last, for each column beside the first, how many of its runs' evaluations (both policies, every
measure) equal, bit for bit, those of the same condition and seed in the first column: a change
that only reorganises the work leaves every run as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_once(out: Path, pythonpath: str | None, command_name: str = "demo") -> dict[str, float]:
    """One ``offswitch demo`` (or ``command_name``) into ``out``; its phases in seconds."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env["COLUMNS"] = "200"
    # The command's own entry point, as the installed script calls it (commits before
    # experiments/ had sub-packages kept it at offswitch.experiments.cli).
    main = (
        "import sys\ntry:\n    from offswitch.experiments.interactive.cli import main\n"
        "except ImportError:\n    from offswitch.experiments.cli import main\n"
        "sys.argv[0] = 'offswitch'\nsys.exit(main())"
    )
    start = time.perf_counter()
    command = subprocess.Popen(
        [sys.executable, "-c", main, command_name, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    marks: dict[str, float] = {}
    assert command.stdout is not None
    for line in command.stdout:
        now = time.perf_counter() - start
        marks.setdefault("first line", now)
        if line.startswith("finished in"):
            marks["finished"] = now
        if line.startswith("wrote "):
            marks["wrote"] = now
    if command.wait() != 0:
        raise SystemExit(f"offswitch {command_name} failed (status {command.returncode})")
    end = time.perf_counter() - start
    runs = json.loads((out / "results.json").read_text())
    # Each run records its seed group's seconds: one figure per group (a condition's seeds
    # train as one group, or a few of them, each with its own seconds).
    loops = {(run["condition"], run["train_seconds"]) for run in runs}
    return {
        "start-up": marks["first line"],
        "training phase": marks["finished"] - marks["first line"],
        "  of which the training loop": max(seconds for _, seconds in loops),
        "every group's training loop, summed": sum(seconds for _, seconds in loops),
        "report": marks["wrote"] - marks["finished"],
        "exit": end - marks["wrote"],
        "total": end,
    }


def evaluations(out: Path) -> dict[tuple[str, int], dict]:
    """Each run's evaluation in an output folder, keyed by condition and seed."""
    runs = json.loads((out / "results.json").read_text())
    return {(run["condition"], run["config"]["seed"]): run["evaluation"] for run in runs}


@contextlib.contextmanager
def reference_checkout(commit: str | None, scratch: Path) -> Iterator[str | None]:
    """A ``PYTHONPATH`` under which ``import offswitch`` is ``commit``'s checkout (a temporary
    ``git worktree``, removed on leaving); ``None`` where no commit is given."""
    if commit is None:
        yield None
        return
    tree = scratch / "reference"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
        check=True,
        capture_output=True,
    )
    try:
        shim = scratch / "path"
        shim.mkdir()
        (shim / "offswitch").symlink_to(tree)
        yield str(shim)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="a commit to measure beside this checkout")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median shown)")
    parser.add_argument("--command", choices=("demo", "compare"), default="demo")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        reference_checkout(args.reference, Path(tmp)) as reference,
    ):
        scratch = Path(tmp)
        columns = {"this checkout": None}
        if args.reference:
            columns[f"reference {args.reference}"] = reference
        measured: dict[str, list[dict[str, float]]] = {name: [] for name in columns}
        results = {}
        for _ in range(args.repeat):
            for name, path in columns.items():
                out = scratch / f"{args.command}-{len(measured[name])}-{name.split()[0]}"
                measured[name].append(demo_once(out, path, args.command))
                results[name] = evaluations(out)
    phases = list(next(iter(measured.values()))[0])
    print(
        f"| `offswitch {args.command}`, seconds (median of {args.repeat}) | "
        + " | ".join(columns)
        + " |"
    )
    print("|---|" + "---:|" * len(columns))
    for phase in phases:
        cells = [f"{statistics.median(m[phase] for m in measured[n]):.1f}" for n in columns]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    first, *others = columns
    for name in others:
        theirs = results[name]
        same = [key for key, evaluation in results[first].items() if theirs.get(key) == evaluation]
        apart = sorted({condition for condition, _ in set(results[first]) - set(same)})
        print(
            f"\nruns whose evaluation is the same, bit for bit, in {name}: "
            f"{len(same)}/{len(results[first])}"
            + (f" (differing conditions: {', '.join(apart)})" if apart else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
