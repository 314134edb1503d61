"""One seed group's training time, this checkout beside a reference commit, taken in turns.

Run: ``python benchmarks/group_time.py --reference COMMIT [--experiment demo] [--condition 0]
[--repeat 3]``. Each measurement trains one condition of an experiment (its seed group, at
its budget) in a fresh process, as a pool worker does (``train_group``), into a temporary
folder, and reads the training loop's seconds from the runs' records. The checkouts take
turns, so that a machine whose speed drifts from minute to minute (shared virtual machines
do) drifts on both. Printed: each checkout's times in the order taken, with their median,
and whether the reference's runs' evaluations equal this checkout's, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_time import ROOT, reference_path  # noqa: E402

GROUP = """
import json, sys
from pathlib import Path
from offswitch.experiments.running.runner import experiment_runs
from offswitch.experiments.running.runs import train_group
from offswitch.experiments.spec.experiment import load_experiment

experiment, index, out = load_experiment(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
runs = experiment_runs(experiment, out)
label = experiment.conditions[index].label
group = [run for run in runs if run[2].get("condition") == label]
for _, folder, _ in group:
    folder.parent.mkdir(parents=True, exist_ok=True)
configs, folders, extras = zip(*group)
results = train_group(list(configs), list(folders), extras=list(extras))
print(json.dumps({"seconds": results[0]["train_seconds"], "label": label,
                  "evaluations": [r["evaluation"] for r in results]}))
"""


def group_once(experiment: str, condition: int, out: Path, pythonpath: str | None) -> dict:
    """One seed group trained in a fresh process; its seconds and evaluations."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", GROUP, experiment, str(condition), str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a commit to measure beside this")
    parser.add_argument("--experiment", default="demo", help="a bundled experiment's name")
    parser.add_argument("--condition", type=int, default=0, help="its condition, from 0")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, in turns")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        columns = {"this checkout": None, f"reference {args.reference}": None}
        columns[f"reference {args.reference}"] = reference_path(args.reference, scratch)
        seconds: dict[str, list[float]] = {name: [] for name in columns}
        evaluations: dict[str, list] = {}
        label = ""
        try:
            for i in range(args.repeat):
                for name, path in columns.items():
                    out = scratch / f"{name.split()[0]}-{i}"
                    measured = group_once(args.experiment, args.condition, out, path)
                    seconds[name].append(measured["seconds"])
                    evaluations[name], label = measured["evaluations"], measured["label"]
        finally:
            tree = str(scratch / "reference")
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", tree],
                capture_output=True,
            )
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)
    print(f"`{args.experiment}`, condition {label!r}: training loop seconds, in the order taken")
    for name, values in seconds.items():
        times = "  ".join(f"{v:6.2f}" for v in values)
        print(f"{name:28s} {times}   median {statistics.median(values):6.2f}")
    first, other = columns
    same = sum(a == b for a, b in zip(evaluations[first], evaluations[other]))
    print(f"runs whose evaluation is the same, bit for bit: {same}/{len(evaluations[first])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
