"""One seed group's training time, this checkout beside a reference commit, taken in turns.

Run: ``python benchmarks/group_time.py --reference COMMIT [--experiment demo] [--condition
0] [--repeat 3]``. Each measurement trains one condition of an experiment (its seed group,
at its budget) in a fresh process, as a pool worker does (the runner's first job for it,
``execute_job``), into a temporary folder, and reads the training loop's seconds from the
runs' records. The checkouts take turns, so that a machine whose speed drifts from minute to
minute (shared virtual machines do) drifts on both. Printed: each checkout's times in the
order taken, with their median, and whether the reference's runs' evaluations equal this
checkout's, bit for bit.
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
from demo_time import reference_checkout  # noqa: E402

GROUP = """
import json, sys
from pathlib import Path
from offswitch.experiments.running.runner import experiment_runs
from offswitch.experiments.running.runs import execute_job, plan_jobs
from offswitch.experiments.spec.experiment import load_experiment

experiment, index, out = load_experiment(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
label = experiment.conditions[index].label
# The condition's first job, as the runner plans it and a pool worker runs it.
jobs = plan_jobs(experiment_runs(experiment, out))
job = next(j for j in jobs if j.extras[0].get("condition") == label)
for folder in job.run_dirs:
    folder.parent.mkdir(parents=True, exist_ok=True)
results = execute_job(job, None)
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
    with (
        tempfile.TemporaryDirectory() as tmp,
        reference_checkout(args.reference, Path(tmp)) as reference,
    ):
        scratch = Path(tmp)
        columns = {"this checkout": None, f"reference {args.reference}": reference}
        seconds: dict[str, list[float]] = {name: [] for name in columns}
        evaluations: dict[str, list] = {}
        label = ""
        for i in range(args.repeat):
            for name, path in columns.items():
                out = scratch / f"{name.split()[0]}-{i}"
                measured = group_once(args.experiment, args.condition, out, path)
                seconds[name].append(measured["seconds"])
                evaluations[name], label = measured["evaluations"], measured["label"]
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
