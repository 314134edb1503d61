"""The seed-batched PPO on the CPU and on a GPU: training env-steps per second per process.

Run: ``python benchmarks/batched_device.py [--steps N] [--seeds 1,10,100] [--devices cpu,cuda]``.
For K = 1, 10 and 100 seeds and each device (the CPU always, ``cuda`` where torch sees one),
:class:`~offswitch.agents.batched_ppo.BatchedPPO` (``device=...``, every other hyperparameter
at its default) trains from scratch on SafeInterruptibility-v0 under no intervention, seeds
0 to K - 1, with one torch thread, in this process: first one rollout and its update as a
warm-up (CUDA's start-up, the allocator's first blocks), not timed, then ``--steps`` env-steps
per seed (default 20,480: ten rollouts of 128 steps x 16 worlds), timed. Printed, one row per
device and K: env-steps per second per process (K x steps / wall seconds), the seconds of one
update (its ``n_epochs`` passes of minibatches) and the share of the wall time the updates
took (the rest is the rollouts: the worlds step in numpy on the CPU whatever the device);
above the table, the torch version and each device's name.

It needs only numpy, torch, gymnasium and this package: Stable-Baselines3 is never imported
(the last line says so), so it runs on a GPU machine without it. Importing this file does
nothing but define what follows.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from offswitch.agents.batched_ppo import BatchedPPO
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget
from offswitch.experiments.spec.config import TrainConfig

ENV_ID = "offswitch/SafeInterruptibility-v0"
STEPS = 20_480
"""Env-steps per seed timed: ten rollouts of the default 128 steps x 16 worlds."""
SEEDS = (1, 10, 100)


def available_devices() -> list[str]:
    """``cpu``, and ``cuda`` where torch sees a CUDA device."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def device_name(device: str) -> str:
    """The device's name: ``torch.cuda.get_device_name`` for CUDA, the processor's for the CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    try:  # Linux names the processor here; platform.processor() often says only x86_64
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def measure(device: str, k: int, steps: int) -> dict[str, float]:
    """Train K seeds on ``device``: one untimed warm-up rollout, then ``steps`` env-steps per
    seed timed. Env-steps per second per process, seconds per update, the updates' share of
    the wall time, and the count of timed updates."""
    world = TrainConfig(env=ENV_ID).world()
    learner = BatchedPPO(
        world, [make_intervention("none") for _ in range(k)], list(range(k)), {"device": device}
    )
    per_rollout = int(learner.hyperparameters["n_steps"]) * learner.n_envs
    learner.train(Budget(steps=per_rollout))  # the warm-up

    update_seconds: list[float] = []
    update = learner.update

    def timed(rollout):
        # update() ends by copying its statistics to the CPU, which waits for the device.
        start = time.perf_counter()
        stats = update(rollout)
        update_seconds.append(time.perf_counter() - start)
        return stats

    learner.update = timed
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    before = learner.steps
    start = time.perf_counter()
    learner.train(Budget(steps=steps))
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    trained = learner.steps - before
    return {
        "rate": k * trained / wall,
        "update_s": sum(update_seconds) / len(update_seconds),
        "update_share": sum(update_seconds) / wall,
        "updates": len(update_seconds),
        "wall_s": wall,
    }


def seed_counts(text: str) -> list[int]:
    """``"1,10,100"`` as ``[1, 10, 100]``, each a whole number >= 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give seed counts >= 1, e.g. 1,10,100")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="env-steps per seed, timed")
    parser.add_argument(
        "--seeds", type=seed_counts, default=list(SEEDS), help="seed counts K, e.g. 1,10,100"
    )
    parser.add_argument(
        "--devices",
        type=lambda text: [d for d in text.split(",") if d],
        default=None,
        help="devices to time (default: cpu, and cuda where torch sees one)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps: give a whole number >= 1")
    devices = args.devices or available_devices()
    torch.set_num_threads(1)  # as the learner sets it: one process per core

    print(f"torch {torch.__version__}, Python {platform.python_version()}, one torch thread")
    for device in devices:
        print(f"{device}: {device_name(device)}")
    print(f"{ENV_ID}, {args.steps:,} env-steps per seed timed after a one-rollout warm-up\n")
    print(f"{'device':8s} {'K':>4s} {'env-steps/s':>12s} {'s/update':>9s} {'update %':>9s}")
    for device in devices:
        for k in args.seeds:
            row = measure(device, k, args.steps)
            print(
                f"{device:8s} {k:4d} {row['rate']:12,.0f} {row['update_s']:9.4f} "
                f"{row['update_share']:9.0%}",
                flush=True,
            )
    imported = "stable_baselines3" in sys.modules
    print(f"\nstable_baselines3 imported: {'yes' if imported else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
