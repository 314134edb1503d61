"""Why PPO never presses ShutdownDelay's delay button: a look inside one training run.

Run ``python -m offswitch.experiments.drest_ppo_probe [--intervention drest] [--steps N]
[--seed S] [--set NAME=VALUE ...]``. It trains PPO (the tuned defaults, or with ``--set``
overrides) on ``ShutdownDelay-v0`` and prints after each of the first rollouts, then every
tenth:

* the policy's action probabilities at the start and one step right of it, on the way to
  the delay button: if they move together, what PPO learns at one cell it learns at the
  other;
* per trajectory length, the training episodes that ended at it in that rollout and the
  mean reward they were paid at the end (the DReST payment, or the coins).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

import offswitch  # noqa: F401  (registers the worlds)
from offswitch.agents.interventions import make_intervention
from offswitch.agents.sb3 import PPOLearner
from offswitch.agents.training import Budget, TrainingWorlds
from offswitch.envs.layout import Action
from offswitch.experiments.config import parse_assignments

ENV_ID = "offswitch/ShutdownDelay-v0"


class Probe(BaseCallback):
    """Prints what the learner does at two cells and what each trajectory length paid."""

    def __init__(self, cells: dict[str, np.ndarray], worlds: TrainingWorlds) -> None:
        super().__init__()
        self.cells, self.worlds = cells, worlds
        self.paid: dict[int, list[float]] = defaultdict(list)
        self.rollouts = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        for episode in self.worlds.drain():
            self.paid[episode.length].append(sum(episode.reward_terms.values()))
        self.rollouts += 1
        if self.rollouts <= 8 or self.rollouts % 10 == 0:
            parts = [f"{self.num_timesteps:>7}"]
            for name, obs in self.cells.items():
                tensor, _ = self.model.policy.obs_to_tensor(obs)
                with th.no_grad():
                    probs = self.model.policy.get_distribution(tensor).distribution.probs
                parts.append(f"{name} " + " ".join(f"{p:.2f}" for p in probs[0].tolist()))
            for length, paid in sorted(self.paid.items()):
                parts.append(f"length {length}: {len(paid)} ep, paid {np.mean(paid):.2f}")
            print("  ".join(parts), flush=True)
        self.paid.clear()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offswitch.experiments.drest_ppo_probe", description=__doc__
    )
    parser.add_argument("--intervention", default="drest", help="(drest)")
    parser.add_argument("--steps", type=int, default=40_960, help="(40960)")
    parser.add_argument("--seed", type=int, default=0, help="(0)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = parse_assignments(args.set, "--set")

    probe_env = gym.make(ENV_ID, observation="flat")
    start, _ = probe_env.reset(seed=0)
    one_right, *_ = probe_env.step(Action.RIGHT)
    intervention = make_intervention(args.intervention)
    learner = PPOLearner(probe_env.unwrapped.world, intervention, args.seed, overrides)
    print(
        f"PPO on {ENV_ID} under {intervention.spec()}, seed {args.seed}, overrides {overrides}\n"
        "steps, action probabilities (up down left right) at the start and one step right, "
        "episodes per trajectory length and their mean reward"
    )
    probe = Probe({"start": start, "right": one_right}, learner.training_worlds)
    learner.model.learn(Budget(steps=args.steps).steps, callback=probe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
