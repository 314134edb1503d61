"""Batched worlds: one transition function, the same episodes as single environments.

The single environment, the batched worlds (:mod:`offswitch.envs.vector`), the SB3 face
(:mod:`offswitch.agents.sb3`) and the planner all step :meth:`TabularWorld.step`; these
tests check that they agree on every field of every step.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_properties import layouts, rules

import offswitch
from offswitch.agents.interventions import make_intervention
from offswitch.agents.sb3 import OffSwitchVecEnv, PPOLearner
from offswitch.agents.training import Budget, TrainingWorlds
from offswitch.envs import LayoutError, ShutdownGridEnv
from offswitch.envs.engine import RulesError
from offswitch.envs.gridworld import INFO_FIELDS
from offswitch.envs.planning import _ends
from offswitch.envs.vector import VectorWorlds


def assert_info_equal(single: dict, batched: dict, i: int, where: str) -> None:
    """Every field of a single environment's info equals entry ``i`` of the batched one,
    with the type the single environment declares."""
    assert set(single) == set(INFO_FIELDS), where
    for key, kind in INFO_FIELDS.items():
        value = single[key]
        assert type(value) is kind, f"{where}: {key} is {type(value).__name__}"
        if key == "reward_terms":
            assert value == {k: float(v[i]) for k, v in batched[key].items()}, where
        else:
            assert value == kind(batched[key][i]), f"{where}: {key}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=layouts(),
    world_rules=rules,
    actions=st.lists(st.integers(0, 4), min_size=1, max_size=150),
    seed=st.integers(0, 2**16),
)
def test_single_batched_and_planner_agree_on_every_step(layout, world_rules, actions, seed):
    try:
        env = ShutdownGridEnv(layout, observation="flat", **world_rules)
    except (LayoutError, RulesError):
        assume(False)
    world = env.world
    batched = VectorWorlds(world, 1, "flat")
    batched.seed([seed])
    obs, info = env.reset(seed=seed)
    states = batched.reset()
    np.testing.assert_array_equal(obs, batched.observe()[0])
    assert_info_equal(info, batched.reset_info(states), 0, "reset")
    for k, a in enumerate(actions):
        a %= env.action_space.n
        state, t = env.state_index, info["t"]
        obs, reward, terminated, truncated, info = env.step(a)
        tr = batched.step(np.array([a]))
        where = f"step {k}"
        np.testing.assert_array_equal(obs, batched.observe()[0])
        assert (reward, terminated, truncated) == (
            float(tr.reward[0]),
            bool(tr.terminated[0]),
            bool(tr.truncated[0]),
        ), where
        assert_info_equal(info, batched.step_info(tr), 0, where)
        # The planner ends an episode exactly where the environments do.
        assert _ends(world, state, a, t) == (terminated or truncated), where
        if terminated or truncated:
            obs, info = env.reset()
            states = batched.reset()
            np.testing.assert_array_equal(obs, batched.observe()[0])
            assert_info_equal(info, batched.reset_info(states), 0, f"{where}, reset")


N_COPIES = 16
STEPS_PER_WORLD = 1000
"""16 copies x 1000 steps x 7 worlds: 112,000 random steps."""


@pytest.mark.parametrize("env_id", offswitch.world_ids())
def test_batched_worlds_give_the_episodes_of_single_environments(env_id):
    singles = [gym.make(env_id, observation="flat") for _ in range(N_COPIES)]
    world = singles[0].unwrapped.world
    batched = VectorWorlds(world, N_COPIES, "flat")
    seeds = [1000 + i for i in range(N_COPIES)]
    batched.seed(seeds)
    batched.reset()
    first = [env.reset(seed=s) for env, s in zip(singles, seeds)]
    np.testing.assert_array_equal(np.stack([o for o, _ in first]), batched.observe())
    rng = np.random.default_rng(0)
    episodes = 0
    for step in range(STEPS_PER_WORLD):
        actions = rng.integers(world.n_actions, size=N_COPIES)
        tr = batched.step(actions)
        info = batched.step_info(tr)
        final = batched.observe()
        ended = tr.terminated | tr.truncated
        if ended.any():
            batched.reset(np.flatnonzero(ended))
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, single = env.step(int(actions[i]))
            where = f"{env_id} step {step} copy {i}"
            np.testing.assert_array_equal(obs, final[i])  # the terminal observation too
            assert (reward, terminated, truncated) == (
                float(tr.reward[i]),
                bool(tr.terminated[i]),
                bool(tr.truncated[i]),
            ), where
            assert_info_equal(single, info, i, where)
            if terminated or truncated:
                episodes += 1
                obs, _ = env.reset()
                np.testing.assert_array_equal(obs, batched.observe()[i])
    assert episodes >= N_COPIES


@pytest.mark.parametrize(
    "env_id, spec",
    [
        ("offswitch/SafeInterruptibility-v0", "none"),
        ("offswitch/SafeInterruptibility-v0", "safe-interruptibility"),
        ("offswitch/ShutdownDelay-v0", "drest:0.9,4"),
    ],
)
def test_the_sb3_face_steps_as_dummy_vec_env_over_wrapped_single_worlds(env_id, spec):
    from stable_baselines3.common.env_util import make_vec_env

    reference = make_vec_env(
        env_id,
        n_envs=4,
        seed=7,
        env_kwargs={"observation": "flat"},
        wrapper_class=make_intervention(spec).wrap,
    )
    world = reference.envs[0].unwrapped.world
    ours = OffSwitchVecEnv(TrainingWorlds(world, 4, make_intervention(spec)))
    ours.seed(7)
    np.testing.assert_array_equal(reference.reset(), ours.reset())
    rng = np.random.default_rng(1)
    for step in range(3000):
        actions = rng.integers(world.n_actions, size=4)
        obs_a, rew_a, done_a, infos_a = reference.step(actions)
        obs_b, rew_b, done_b, infos_b = ours.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        for a, b in zip(infos_a, infos_b):
            if "terminal_observation" in a:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"], step
                # Monitor, below the wrappers, misses the episodes an intervention ends early;
                # ours reports every episode the learner sees end.
                if "episode" in a:
                    assert (a["episode"]["r"], a["episode"]["l"]) == (
                        b["episode"]["r"],
                        b["episode"]["l"],
                    )
            else:
                assert b == {}  # lean infos: only what SB3 reads at an episode's end


@pytest.mark.training
@pytest.mark.parametrize("spec", ["none", "penalty:100", "indifference"])
def test_sb3_trains_identically_on_batched_and_single_worlds(spec):
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    env_id = "offswitch/SafeInterruptibility-v0"
    single = make_vec_env(
        env_id,
        n_envs=PPOLearner.n_envs,
        seed=3,
        env_kwargs={"observation": "flat"},
        wrapper_class=make_intervention(spec).wrap,
    )
    reference = PPOLearner.algorithm(
        "MlpPolicy", single, seed=3, device="cpu", **PPOLearner.defaults
    )
    reference.learn(4096)
    learner = PPOLearner(single.envs[0].unwrapped.world, make_intervention(spec), 3)
    learner.train(Budget(steps=4096))
    expected = torch.nn.utils.parameters_to_vector(reference.policy.parameters())
    got = torch.nn.utils.parameters_to_vector(learner.model.policy.parameters())
    assert torch.equal(expected, got)
