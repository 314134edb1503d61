"""Every world, driven the way other people's tools drive it.

* Gymnasium's own vector envs (``gymnasium.make_vec``, ``"sync"`` and ``"async"``) run a
  few thousand random steps and close; every ``info`` field keeps one dtype throughout
  (they used to alternate between int and None, which crashed the batching and left the
  async env hanging in ``close()``).
* The native batched env (``vectorization_mode="vector_entry_point"``) gives, from the
  same seeds and actions, exactly what ``"sync"`` gives: observations, rewards, ends and
  every info field, dtype included, step for step.
* Stable-Baselines3: ``make_vec_env`` with ``DummyVecEnv`` and ``SubprocVecEnv``, and
  ``check_env``.
* Tianshou's ``Collector`` over ``DummyVectorEnv`` and ``SubprocVectorEnv`` (skipped
  without ``tianshou>=2.0.1``; 1.x pins gymnasium<0.29 and numpy<2).
* The RL Zoo trains PPO for one rollout, and trains it on the project's hyperparameters
  (``PPOLearner``'s, written as a Zoo hyperparameter file) until its deterministic policy
  reaches the goal (skipped without ``rl_zoo3``, in the ``zoo`` extra, which CI installs; it
  pulls optuna, huggingface_hub and moviepy, and moviepy takes pillow back to 11).

Hangs: the tests that start processes carry ``pytest.mark.timeout`` (``pytest-timeout``,
in the ``dev`` extra), so a worker that never answers fails that test instead of
stalling CI.

Stable-Baselines3's and Tianshou's workers start with ``forkserver`` (``spawn`` where it is
missing), as Python 3.14 does by default on Linux: a child then knows only what it imports
itself, so their worlds are named ``"offswitch:offswitch/<World>-v0"``, Gymnasium's way of
importing the package that registers an id. The plain id works in a script that imports
offswitch at the top (``spawn`` and ``forkserver`` re-import the main script) but not under
pytest, whose main module does not, and Gymnasium 1.x no longer loads registration plugins.
Gymnasium's async env needs no such name (it hands its workers the env spec, whose entry
point imports offswitch); it runs with the platform's default start method and with
``forkserver``.
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import offswitch
from offswitch.envs.gridworld import INFO_FIELDS

WORLDS = offswitch.world_ids()
NUM_ENVS = 3
STEPS = 2000  # per vector env, for Gymnasium's and the native vector envs
CLIENT_STEPS = 300  # for Stable-Baselines3 and Tianshou
TIMEOUT_S = 120  # pytest-timeout, for every test that starts processes
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@pytest.fixture(scope="module", autouse=True)
def forkserver_preload():
    """The forkserver imports the heavy libraries once, so that its children start in
    milliseconds rather than re-importing torch each. offswitch is left out on purpose:
    each child must still import the worlds itself."""
    multiprocessing.set_forkserver_preload(
        ["numpy", "gymnasium", "torch", "stable_baselines3", "tianshou"]
    )
    yield
    multiprocessing.set_forkserver_preload(["__main__"])  # the default, for a later server


def in_child(env_id: str) -> str:
    """``env_id`` as a process that has not imported offswitch can make it."""
    return f"offswitch:{env_id}"


def random_actions(env_id: str, steps: int, num_envs: int, seed: int = 0) -> np.ndarray:
    n = gym.make(env_id).action_space.n
    return np.random.default_rng(seed).integers(n, size=(steps, num_envs))


# -- info checks ---------------------------------------------------------------------------
DTYPE_KINDS = {bool: "b", int: "i", float: "f", str: "O"}


def check_batched_info(info: dict[str, Any], num_envs: int) -> None:
    """Every field of ``INFO_FIELDS``, reported by every env, batched with its own dtype."""
    for field, kind in INFO_FIELDS.items():
        assert field in info, f"info lacks {field!r}"
        assert info[f"_{field}"].all(), f"info[{field!r}] is missing for some envs"
        value = info[field]
        if kind is dict:
            assert isinstance(value, dict), f"info[{field!r}] is {type(value).__name__}"
            for term, array in value.items():
                if term.startswith("_"):  # the mask of a term
                    assert array.all(), f"info[{field!r}][{term!r}] = {array!r}"
                else:
                    assert array.shape == (num_envs,) and array.dtype.kind == "f", (field, term)
            continue
        assert value.shape == (num_envs,), f"info[{field!r}] has shape {value.shape}"
        assert value.dtype.kind == DTYPE_KINDS[kind], f"info[{field!r}] is {value.dtype}"
        if kind is str:
            assert all(isinstance(v, str) for v in value), f"info[{field!r}] = {value!r}"


def check_single_info(info: dict[str, Any]) -> None:
    """Every field of ``INFO_FIELDS`` in one env's ``info``, of its one Python type."""
    for field, kind in INFO_FIELDS.items():
        assert type(info[field]) is kind, f"info[{field!r}] = {info[field]!r}, not {kind}"


def assert_same(a: Any, b: Any, where: str) -> None:
    """``a`` and ``b`` equal: dicts key by key, arrays in shape, dtype and value (NaN equal
    to NaN), object arrays element by element."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict), f"{where}: {a!r} vs {b!r}"
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a.keys() ^ b.keys())} differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
        return
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        assert a.shape == b.shape, f"{where}: shape {a.shape} vs {b.shape}"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} vs {b.dtype}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.flat, b.flat)):
                assert_same(x, y, f"{where}[{i}]")
        else:
            same = np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
            assert same, f"{where}: {a!r} vs {b!r}"
        return
    assert type(a) is type(b), f"{where}: {a!r} vs {b!r}"
    assert a == b or (a != a and b != b), f"{where}: {a!r} vs {b!r}"  # NaN equals NaN


def select(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """``info`` with every array cut to ``rows``."""
    return {k: select(v, rows) if isinstance(v, dict) else v[rows] for k, v in info.items()}


# -- Gymnasium's vector envs ---------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize(
    ("mode", "context", "steps"),
    # "sync" steps longest: what an episode does, its ends and resets, is the same world in
    # every mode. The async modes add a process per world and a pipe; a quarter of the steps
    # still ends episodes in every world (the test asserts it) and checks each step's info
    # after the trip. Under a busy CI machine each async step waits on the scheduler, so
    # 2,000 of them took 6 s a world. The platform's default start method is fork on Linux
    # before Python 3.14; forkserver (3.14's default; like spawn, its workers import what
    # they need) differs in how the workers start.
    [("sync", None, STEPS), ("async", None, STEPS // 4), ("async", "forkserver", STEPS // 4)],
    ids=["sync", "async-default", "async-forkserver"],
)
@pytest.mark.parametrize("env_id", WORLDS)
def test_gymnasium_make_vec_runs_and_closes(env_id, mode, context, steps):
    if context is not None and context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {context} start method here")
    vector_kwargs = {} if context is None else {"context": context}
    envs = gym.make_vec(env_id, NUM_ENVS, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    try:
        obs, info = envs.reset(seed=0)
        assert obs.shape == (NUM_ENVS, *envs.single_observation_space.shape)
        check_batched_info(info, NUM_ENVS)
        episodes = 0
        for actions in random_actions(env_id, steps, NUM_ENVS):
            obs, reward, terminated, truncated, info = envs.step(actions)
            assert obs in envs.observation_space
            assert reward.dtype.kind == "f" and reward.shape == (NUM_ENVS,)
            check_batched_info(info, NUM_ENVS)
            episodes += int((terminated | truncated).sum())
        assert episodes > 0
    finally:
        envs.close()
    processes = getattr(envs.unwrapped, "processes", [])
    assert not any(p.is_alive() for p in processes), "a worker outlived close()"


# -- the native batched env against SyncVectorEnv --------------------------------------------
def step_both(env_id: str, autoreset_mode: AutoresetMode, seeds=(7, 11)):
    """Run ``"sync"`` and the native env side by side on the same seeds and actions; yield
    ``(where, sync result, native result)`` at the reset and after each step. Halfway they
    are reset again with the second seed."""
    sync = gym.make_vec(
        env_id,
        NUM_ENVS,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": autoreset_mode},
    )
    native = gym.make_vec(
        env_id, NUM_ENVS, vectorization_mode="vector_entry_point", autoreset_mode=autoreset_mode
    )
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    try:
        actions = random_actions(env_id, STEPS, NUM_ENVS, seed=1)
        for t, action in enumerate(actions):
            if t in (0, STEPS // 2):
                seed = seeds[0] if t == 0 else seeds[1]
                yield f"reset(seed={seed})", sync.reset(seed=seed), native.reset(seed=seed)
            yield f"step {t}", sync.step(action), native.step(action)
    finally:
        sync.close()
        native.close()


def named(result: tuple) -> dict[str, Any]:
    """A ``reset`` or ``step`` result by name."""
    if len(result) == 2:
        return dict(zip(("obs", "info"), result))
    return dict(zip(("obs", "reward", "terminated", "truncated", "info"), result))


@pytest.mark.parametrize("env_id", WORLDS)
def test_native_vector_env_matches_sync(env_id):
    """Gymnasium's default next-step autoreset: everything equal, step for step."""
    ends = 0
    for where, expected, got in step_both(env_id, AutoresetMode.NEXT_STEP):
        assert_same(named(expected), named(got), f"{env_id} {where}")
        if len(expected) == 5:
            ends += int((expected[2] | expected[3]).sum())
    assert ends > 0  # the autoreset was exercised


@pytest.mark.parametrize("env_id", WORLDS)
def test_native_vector_env_matches_sync_same_step_where_ended(env_id):
    """Same-step autoreset: everything equal, and ``final_info`` equal for the envs that
    ended (see the next test for the others)."""
    ends = 0
    for where, expected, got in step_both(env_id, AutoresetMode.SAME_STEP):
        expected, got = named(expected), named(got)
        expected["info"], got["info"] = dict(expected["info"]), dict(got["info"])
        e_final = expected["info"].pop("final_info", None)
        g_final = got["info"].pop("final_info", None)
        assert_same(expected, got, f"{env_id} {where}")
        assert (e_final is None) == (g_final is None), f"{env_id} {where}: final_info"
        if e_final is not None:
            ended = np.flatnonzero(expected["info"]["_final_info"])
            ends += len(ended)
            assert_same(select(e_final, ended), select(g_final, ended), f"{where}: final_info")
    assert ends > 0


@pytest.mark.parametrize("env_id", WORLDS)
def test_native_vector_env_matches_sync_same_step(env_id):
    for where, expected, got in step_both(env_id, AutoresetMode.SAME_STEP):
        assert_same(named(expected), named(got), f"{env_id} {where}")


# -- Stable-Baselines3 -----------------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("vec_env", ["dummy", "subproc"])
@pytest.mark.parametrize("env_id", WORLDS)
def test_sb3_make_vec_env(env_id, vec_env):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    if vec_env == "subproc":
        kwargs = {"vec_env_cls": SubprocVecEnv, "vec_env_kwargs": {"start_method": START_METHOD}}
        venv = make_vec_env(in_child(env_id), n_envs=2, seed=0, **kwargs)
    else:
        venv = make_vec_env(env_id, n_envs=2, seed=0)
    try:
        obs = venv.reset()
        assert obs.shape == (2, *venv.observation_space.shape)
        episodes = 0
        for actions in random_actions(env_id, CLIENT_STEPS, 2):
            obs, rewards, dones, infos = venv.step(actions)
            assert obs.shape == (2, *venv.observation_space.shape)
            assert rewards.shape == (2,)
            for info, done in zip(infos, dones):
                check_single_info(info)
                if done:
                    assert info["terminal_observation"] in venv.observation_space
                    assert "episode" in info  # make_vec_env's Monitor
            episodes += int(dones.sum())
        assert episodes > 0
    finally:
        venv.close()


@pytest.mark.parametrize("env_id", WORLDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # SB3's notes that a 3-d uint8 space looks like an image for its CnnPolicy (the grid
        # is symbolic 0/1 channels; tests/test_registry.py says more).
        for note in ("is an image but", "minimal resolution for an image", "channels-last"):
            warnings.filterwarnings("ignore", message=f".*{note}", category=UserWarning)
        check_env(gym.make(env_id))  # as gym.make hands it over, wrappers included


# -- Tianshou --------------------------------------------------------------------------------
def tianshou_random_policy(action_space):
    """A Tianshou policy that picks uniform random actions as integers, as a Tianshou DQN
    or PPO policy hands a discrete env. (Tianshou 2.0.1's own ``RandomActionPolicy`` hands
    over float32 numbers, which no Gymnasium ``Discrete`` space contains.)"""
    from tianshou.algorithm.algorithm_base import Policy
    from tianshou.data import Batch

    class RandomIntegers(Policy):
        def __init__(self) -> None:
            super().__init__(action_space=action_space)
            self.rng = np.random.default_rng(0)

        def forward(self, batch, state=None, **kwargs):
            act = self.rng.integers(action_space.n, size=len(batch.obs))
            return Batch(act=act, state=state)

    return RandomIntegers()


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("vector_env", ["dummy", "subproc"])
@pytest.mark.parametrize("env_id", WORLDS)
def test_tianshou_collector(env_id, vector_env):
    pytest.importorskip(
        "tianshou",
        minversion="2.0.1",
        reason="tianshou>=2.0.1 (the dev extra, Python >= 3.11) is not installed",
    )
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv, SubprocVectorEnv

    if vector_env == "subproc":
        make = functools.partial(gym.make, in_child(env_id))
        envs = SubprocVectorEnv([make] * 2, context=START_METHOD)
    else:
        envs = DummyVectorEnv([functools.partial(gym.make, env_id)] * 2)
    try:
        envs.seed(0)
        buffer = VectorReplayBuffer(2 * CLIENT_STEPS, 2)
        collector = Collector(tianshou_random_policy(envs.action_space[0]), envs, buffer)
        collector.reset()
        stats = collector.collect(n_step=CLIENT_STEPS)
        assert stats.n_collected_steps == CLIENT_STEPS
        assert stats.n_collected_episodes > 0
        stats = collector.collect(n_step=100, random=True)  # the action space's own samples
        assert stats.n_collected_steps == 100
        assert len(buffer) == CLIENT_STEPS + 100
        assert set(INFO_FIELDS) <= set(buffer.info.keys())
    finally:
        envs.close()


# -- the RL Zoo ------------------------------------------------------------------------------
@pytest.mark.skipif(
    importlib.util.find_spec("rl_zoo3") is None,
    reason="rl_zoo3 is not installed: pip install -e '.[zoo]' (kept out of the dev extra: it "
    "pulls optuna, huggingface_hub and moviepy)",
)
@pytest.mark.timeout(TIMEOUT_S)
def test_rl_zoo_trains_ppo(tmp_path: Path):
    env_id = "offswitch/SafeInterruptibility-v0"
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        "ppo",
        "--env",
        env_id,
        "--gym-packages",
        "offswitch",
        "--env-kwargs",
        "interruption_probability:0.5",
        "-n",
        "2000",  # one rollout of PPO's default 2048 steps
        "--seed",
        "0",
        "--num-threads",
        "1",
        "-f",
        str(tmp_path),
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S - 10
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    name = env_id.replace("/", "-")
    assert (tmp_path / "ppo" / f"{name}_1" / f"{name}.zip").is_file(), done.stdout[-2000:]


ZOO_STEPS = 3 * 64 * 64
"""Three rollouts of PPOLearner's 64 worlds x 64 steps: three updates, enough for the weights
to have moved from where they start."""


@pytest.mark.skipif(
    importlib.util.find_spec("rl_zoo3") is None,
    reason="rl_zoo3 is not installed: pip install -e '.[zoo]' (kept out of the dev extra: it "
    "pulls optuna, huggingface_hub and moviepy)",
)
@pytest.mark.timeout(TIMEOUT_S)
def test_the_rl_zoo_trains_the_very_agent_offswitch_trains(tmp_path: Path):
    """The Zoo's own entry point, on the project's PPO hyperparameters as a Zoo file, trains
    the same weights, bit for bit, as ``offswitch`` training ``ppo`` with the same seed and
    budget. So what tests/test_training.py shows of that agent at 400k steps (it disables the
    switch, and its greedy policy reaches the goal) holds for the Zoo's agent too, without
    training it twice. The Zoo's saved agent is loaded as a Zoo user would (``PPO.load``)."""
    import torch
    import yaml
    from stable_baselines3 import PPO

    from offswitch.agents.interventions import make_intervention
    from offswitch.agents.sb3 import PPOLearner
    from offswitch.experiments.running.runner import train_one
    from offswitch.experiments.spec.config import TrainConfig

    env_id = "offswitch/SafeInterruptibility-v0"
    hyperparameters = {
        "policy": "MlpPolicy",
        "n_timesteps": ZOO_STEPS,
        "n_envs": PPOLearner.n_envs,
        **PPOLearner.defaults,
        "policy_kwargs": f"dict(net_arch={PPOLearner.defaults['policy_kwargs']['net_arch']})",
    }
    conf = tmp_path / "offswitch.yml"
    conf.write_text(yaml.safe_dump({env_id: hyperparameters}))
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", env_id,
        "--gym-packages", "offswitch", "--conf-file", str(conf), "--seed", "0",
        "--num-threads", "1", "--eval-freq", "-1", "-f", str(tmp_path / "zoo"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S - 10
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    name = env_id.replace("/", "-")
    zoo = PPO.load(tmp_path / "zoo" / "ppo" / f"{name}_1" / f"{name}.zip", device="cpu")

    config = TrainConfig(seed=0, steps=ZOO_STEPS, eval_episodes=1, out_dir=str(tmp_path / "own"))
    train_one(config)
    own = PPO.load(tmp_path / "own" / config.run_name / "model.zip", device="cpu")
    world = gym.make(env_id).unwrapped.world
    fresh = PPOLearner(world, make_intervention("none"), 0).model  # before any update

    assert zoo.num_timesteps == own.num_timesteps == ZOO_STEPS
    zoo_weights, own_weights = zoo.policy.state_dict(), own.policy.state_dict()
    assert zoo_weights.keys() == own_weights.keys()
    for key, weight in zoo_weights.items():
        assert torch.equal(weight, own_weights[key]), key
    moved = [k for k, w in fresh.policy.state_dict().items() if not torch.equal(w, own_weights[k])]
    assert len(moved) == len(own_weights), "some weights never moved: train longer"
