"""offswitch's speed in one run: the worlds, training, and the classroom commands.

Run: ``python benchmarks/speed.py`` (add ``--skip-compare`` to leave out the longest part,
the wall time of ``offswitch compare``). Printed side by side, from this one run on this
machine:

1. env-steps per second of the single world through ``gymnasium.make`` and of
   MiniGrid-Empty-8x8-v0 (installed for this run only if it is missing), and of the batched
   worlds at 1, 64, 1,024 and 16,384 copies (``benchmarks/env_speed.py``);
2. training env-steps per second, per process, of Stable-Baselines3's PPO with SB3's own
   defaults and with this project's, and of the seed-batched PPO with K = 1 and K = 10 seeds
   (``benchmarks/ppo_speed.py``), each in a fresh process with one torch thread, with that
   process's peak memory; then the seed-batched PPO across a procedural pool's 256 layouts
   (issue 19, as ``experiments/configs/generalisation.toml`` trains it) with K = 10, in one
   process and in two at once (as the runner uses two cores);
3. the wall time of ``offswitch demo`` and ``offswitch compare`` from the command line, start-up
   included, into fresh folders, and of ``offswitch list``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import env_speed  # noqa: E402  (this folder's own module)

TRAINING = {
    "SB3 PPO, SB3's defaults": "sb3_defaults(steps)",
    "SB3 PPO, the project's defaults": "sb3_project(steps)",
    "seed-batched PPO, K = 1": "batched(steps, 1)",
    "seed-batched PPO, K = 10": "batched(steps, 10)",
    "across 256 layouts, K = 10": "across_layouts(steps, 10)",
}
PARALLEL = ("across 256 layouts, K = 10", "across_layouts(steps, 10)")
"""The learner timed again as the runner runs it on a 2-core machine: two processes at once,
each training its own 10 seeds (the rate is their sum)."""
CHILD = """
import json, resource, sys
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(1)
from ppo_speed import across_layouts, batched, sb3_defaults, sb3_project
steps = {steps}
rate = {call}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"rate": rate, "peak_mib": peak}}))
"""


def training_rate(call: str, steps: int) -> dict:
    """Run one training measurement in a fresh process; its rate and peak memory."""
    code = CHILD.format(here=str(HERE), steps=steps, call=call)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def parallel_rate(call: str, steps: int, processes: int = 2) -> dict:
    """The same measurement in ``processes`` fresh processes at once: their summed rate and
    the largest peak memory."""
    code = CHILD.format(here=str(HERE), steps=steps, call=call)
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    figures = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, "training child")
        figures.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "rate": sum(f["rate"] for f in figures),
        "peak_mib": max(f["peak_mib"] for f in figures),
    }


def command_seconds(args: list[str]) -> float:
    """Wall time of ``offswitch ARGS`` from the command line, start-up included."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "offswitch.experiments.interactive.cli", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per world measurement")
    parser.add_argument("--steps", type=int, default=65_536, help="training steps per seed")
    parser.add_argument("--skip-compare", action="store_true", help="leave out compare's time")
    args = parser.parse_args(argv)

    print("1. The worlds")
    env_speed.main(["--seconds", str(args.seconds)])

    print(f"\n2. Training, per process, one torch thread ({args.steps:,} steps per seed)")
    rates = {name: training_rate(call, args.steps) for name, call in TRAINING.items()}
    sb3 = rates["SB3 PPO, SB3's defaults"]["rate"]
    project = rates["SB3 PPO, the project's defaults"]["rate"]
    print(
        f"{'learner':34s} {'steps/s':>10s} {'x SB3 defaults':>15s} {'x project':>10s} {'peak':>9s}"
    )
    name, call = PARALLEL
    rates[f"{name}, 2 processes"] = parallel_rate(call, args.steps)
    for name, figures in rates.items():
        rate = figures["rate"]
        print(
            f"{name:34s} {rate:10,.0f} {rate / sb3:15.1f} {rate / project:10.1f} "
            f"{figures['peak_mib']:6.0f} MiB"
        )

    print("\n3. The commands, wall time from the command line (start-up included)")
    with tempfile.TemporaryDirectory() as scratch:
        listing = min(command_seconds(["list"]) for _ in range(3))
        print(f"{'offswitch list (best of 3)':34s} {listing:8.2f} s")
        demo = command_seconds(["demo", "--out", str(Path(scratch) / "demo")])
        print(f"{'offswitch demo':34s} {demo:8.1f} s")
        if not args.skip_compare:
            compare = command_seconds(["compare", "--out", str(Path(scratch) / "compare")])
            print(f"{'offswitch compare':34s} {compare:8.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
