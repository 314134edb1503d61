"""Trace the policy where the greedy policy went wrong, over training: the figure of collapse.md.

Run: ``python benchmarks/collapse_trace.py [--seeds 0-9] [--out docs/collapse_trace.png]``
(about 5 minutes on one core). Trains batched-ppo on SafeInterruptibility-v0, seeds 0-9, in two
cases, each with and without one part of the fix (``agents/batched_ppo.py``'s docstring):

* task reward only, 5M steps, with and without ``prob_floor``: the policy in the cell above
  the button (row 4, column 6, switch live), where ``down`` is the way on to the button and a
  collapsed seed loops; the panel shows the least probability of any action there, how deep
  an action is saturated out (the table also gives ``p(down)``).
* penalty 100, 1M steps, the fix and ``batched-ppo-sb3`` (SB3's PPO at the same batches): the
  probability of ``down`` at the start (row 2, column 6), the only move that leaves it; the
  rest of it bumps a wall or the ceiling.

It prints, per case and checkpoint, the median over seeds and the lowest seed of that
probability and of the least probability of any action there, and draws one panel per case
(each seed a line, log scale), so that how the policy moves in those cells can be read off.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import offswitch  # noqa: F401  (registers the worlds)
from offswitch.agents.batched_ppo import BatchedPPO, BatchedPPOSB3
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget, TrainingHooks

DOWN = 1
"""``Action.DOWN``."""
WIDTH = 8
"""Columns of SafeInterruptibility's grid: a cell's index is ``row * WIDTH + column``."""
CASES = (
    ("task reward only: least p(any action) above the button", "none", 5_000_000, (4, 6), {
        "the fix": (BatchedPPO, {}),
        "the fix without prob_floor": (BatchedPPO, {"prob_floor": 0.0}),
    }),
    ("penalty 100: p(down) at the start", "penalty:100", 1_000_000, (2, 6), {
        "the fix": (BatchedPPO, {}),
        "batched-ppo-sb3": (BatchedPPOSB3, {}),
    }),
)  # fmt: skip
CHECKPOINTS = 40
"""Points along each run at which the policy is read."""


class Tracer(TrainingHooks):
    """Reads every seed's policy in one cell every ``every`` rollouts (seed 0's hook does it
    for all seeds: the policy table holds them all)."""

    def __init__(self, learner: BatchedPPO, rows: np.ndarray, every: int) -> None:
        self.learner, self.rows, self.every = learner, rows, every
        self.calls = 0
        self.steps: list[int] = []
        self.probs: list[np.ndarray] = []  # [K, A] each

    def rollout_end(self, episodes, timesteps) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            log_p = self.learner.policy_table()[0].cpu().numpy()  # [K, U, A]
            # The cell's states share one observation where the switch is live.
            self.probs.append(np.exp(log_p[:, self.rows].mean(axis=1)))
            self.steps.append(timesteps)


def cell_rows(learner: BatchedPPO, cell: tuple[int, int]) -> np.ndarray:
    """The observation rows of the states in ``cell`` with the switch live."""
    world = learner.world
    index = cell[0] * WIDTH + cell[1]
    states = [
        s for s in range(world.n_states) if world.cell[s] == index and not world.switch_disabled[s]
    ]
    rows = np.unique(learner.row_of_state[states])
    if len(rows) != 1:
        raise SystemExit(f"cell {cell}: {len(rows)} observations with the switch live, not 1")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--out", default="docs/collapse_trace.png")
    parser.add_argument("--scale", type=float, default=1.0, help="budgets times this (a quick try)")
    args = parser.parse_args()
    first, _, last = args.seeds.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    world = gym.make("offswitch/SafeInterruptibility-v0").unwrapped.world
    traces = []
    for title, spec, steps, cell, variants in CASES:
        steps = int(steps * args.scale)
        for name, (cls, overrides) in variants.items():
            start = time.perf_counter()
            learner = cls(world, [make_intervention(spec) for _ in seeds], seeds, overrides)
            per_rollout = int(learner.hyperparameters["n_steps"]) * learner.n_envs
            every = max(1, steps // per_rollout // CHECKPOINTS)
            tracer = Tracer(learner, cell_rows(learner, cell), every)
            hooks = [tracer] + [TrainingHooks() for _ in seeds[1:]]
            learner.train(Budget(steps=steps), hooks)
            probs = np.stack(tracer.probs)  # [checkpoints, K, A]
            traces.append((title, name, np.array(tracer.steps), probs))
            print(f"\n{title}, {name} ({time.perf_counter() - start:.0f} s)")
            print("     steps  p(down): median  lowest seed   least p(any action): median  lowest")
            for t, p in zip(tracer.steps[::4] + tracer.steps[-1:], list(probs[::4]) + [probs[-1]]):
                down, least = p[:, DOWN], p.min(axis=1)
                print(
                    f"{t:>10,}  {np.median(down):14.4f}  {down.min():11.2e}"
                    f"   {np.median(least):27.2e}  {least.min():.2e}"
                )
    draw(traces, Path(args.out))
    print(f"\nwrote {args.out}")


def draw(traces, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(dict.fromkeys(t[0] for t in traces))
    fig, axes = plt.subplots(1, len(titles), figsize=(6 * len(titles), 4), squeeze=False)
    colours = {}
    for title, name, steps, probs in traces:
        ax = axes[0][titles.index(title)]
        colour = colours.setdefault(name, f"C{len(colours)}")
        least = title.startswith("task")  # the collapse: how deep an action is saturated out
        shown = probs.min(axis=2) if least else probs[:, :, DOWN]
        for k in range(probs.shape[1]):
            ax.plot(steps, shown[:, k], color=colour, alpha=0.6, lw=1,
                    label=name if k == 0 else None)  # fmt: skip
        ax.set_ylabel(("least p(any action)" if least else "p(down)") + ", one line per seed")
        ax.set_yscale("log")
        ax.set_ylim(1e-9, 2)
        ax.set_title(title)
        ax.set_xlabel("training steps")
        ax.legend(loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
