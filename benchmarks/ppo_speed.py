"""How fast PPO trains on one core: Stable-Baselines3's PPO against the seed-batched PPO.

Run: ``python benchmarks/ppo_speed.py`` (``--steps`` per seed, default 65,536: two rollouts
of SB3's default 2048 x 16). Each learner trains from scratch on SafeInterruptibility-v0
under no intervention, with one torch thread, in this process; printed: training env-steps
per second, summed over the seeds trained together, of

* SB3's PPO with SB3's own defaults: ``PPO("MlpPolicy", env)`` on the 16 batched worlds
  (:class:`~offswitch.agents.sb3.OffSwitchVecEnv`), nothing else changed;
* SB3's PPO with this project's defaults (:class:`~offswitch.agents.sb3.PPOLearner`);
* the seed-batched PPO (:class:`~offswitch.agents.batched_ppo.BatchedPPO`) at K = 1 and 10
  seeds, and, for reference, at the largest K with the batches it had before the convergence
  fix (16 worlds x 128 steps, minibatches of 512, 4 epochs),

and each one's ratio to the two SB3 figures.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from offswitch.agents.batched_ppo import BatchedPPO, BatchedPPOSB3
from offswitch.agents.interventions import make_intervention
from offswitch.agents.sb3 import OffSwitchVecEnv, PPOLearner
from offswitch.agents.training import Budget, TrainingWorlds
from offswitch.experiments.spec.config import TrainConfig


def sb3_defaults(steps: int) -> float:
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    world = TrainConfig().world()
    env = OffSwitchVecEnv(TrainingWorlds(world, 16, make_intervention("none")))
    env.seed(0)
    model = PPO("MlpPolicy", env, seed=0, device="cpu")
    start = time.perf_counter()
    model.learn(steps)
    return model.num_timesteps / (time.perf_counter() - start)


def sb3_project(steps: int) -> float:
    learner = PPOLearner(TrainConfig().world(), make_intervention("none"), 0)
    start = time.perf_counter()
    learner.train(Budget(steps=steps))
    return learner.model.num_timesteps / (time.perf_counter() - start)


OLD_DEFAULTS = dict(n_envs=16, n_steps=128, batch_size=512, n_epochs=4)
"""batched-ppo's batches before the convergence fix (issue 17): the reference row."""


def batched(steps: int, k: int, old: bool = False) -> float:
    world = TrainConfig().world()
    seeds, interventions = list(range(k)), [make_intervention("none") for _ in range(k)]
    if old:
        learner: BatchedPPO = BatchedPPOSB3(world, interventions, seeds, OLD_DEFAULTS)
    else:
        learner = BatchedPPO(world, interventions, seeds)
    start = time.perf_counter()
    learner.train(Budget(steps=steps))
    return k * learner.steps / (time.perf_counter() - start)


ACROSS_LAYOUTS = "task reward only, 256 training layouts"
"""The condition of ``experiments/configs/generalisation.toml`` whose pool, view and
hyperparameters :func:`across_layouts` trains with."""


def across_layouts(steps: int, k: int) -> float:
    """``batched-ppo`` with K seeds on a procedural pool (issue 19), as the generalisation
    experiment trains it: 256 layouts of 9 x 9, the egocentric view, that experiment's
    hyperparameters. The pool's tables are built before the clock starts (a few seconds,
    once per process)."""
    from offswitch.experiments.spec.experiment import load_experiment

    config = load_experiment("generalisation").condition(ACROSS_LAYOUTS).config
    run = config.resolve()
    seeds = list(range(k))
    interventions = [make_intervention(config.intervention) for _ in seeds]
    hyper = run.phases[0].hyperparameters
    learner = BatchedPPO(run.world, interventions, seeds, hyper, config.observation)
    start = time.perf_counter()
    learner.train(Budget(steps=steps))
    return k * learner.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=65_536, help="training steps per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10], help="K to measure")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    rates = {
        "SB3 PPO, SB3 defaults": sb3_defaults(args.steps),
        "SB3 PPO, project defaults (PPOLearner)": sb3_project(args.steps),
    }
    for k in args.seeds:
        rates[f"batched-ppo, K={k}"] = batched(args.steps, k)
    k = max(args.seeds)
    rates[f"batched-ppo-sb3 at the old defaults, K={k}"] = batched(args.steps, k, old=True)
    sb3, project = rates["SB3 PPO, SB3 defaults"], rates["SB3 PPO, project defaults (PPOLearner)"]
    print(f"{'learner':42s} {'steps/s':>10s} {'x SB3 defaults':>15s} {'x PPOLearner':>13s}")
    for name, rate in rates.items():
        print(f"{name:42s} {rate:10,.0f} {rate / sb3:15.1f} {rate / project:13.1f}")


if __name__ == "__main__":
    main()
