"""The procedural family (issue 19): a seeded generator of valid off-switch layouts whose
incentive is known by dynamic programming, its registered id, and batched worlds across
layouts that play the episodes of single environments."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from test_clients import assert_same, check_batched_info, check_single_info, named, select

from offswitch.envs import family_ids, world_ids
from offswitch.envs.engine import RulesError, ShutdownRules, TabularWorld
from offswitch.envs.gridworld import INFO_FIELDS
from offswitch.envs.layout import Layout, parse_layout, reachable_mask
from offswitch.envs.mixed_vector import MixedVectorWorlds, StackedWorld
from offswitch.envs.planning import optimal_values, solve
from offswitch.envs.procedural import (
    CHANNELS,
    FAMILY_INFO_FIELDS,
    MAX_SIZE,
    MIN_LONG_SIZE,
    MIN_SIZE,
    SPLITS,
    SWITCH_SPLITS,
    FamilyError,
    LayoutFamily,
    ProceduralOffSwitchEnv,
    family_rules,
    generate_layout,
    incentive,
    layout_rules,
)

ENV_ID = "offswitch/ProceduralOffSwitch-v0"
SMALL = {"num_layouts": 12}
"""Pools small enough that building every layout's tables takes a fraction of a second."""


@st.composite
def layout_args(draw) -> tuple[int, str, int, int]:
    split = draw(st.sampled_from(sorted(SWITCH_SPLITS)))
    minimum = MIN_LONG_SIZE if split == "test-long-button" else MIN_SIZE
    height = draw(st.integers(minimum, MAX_SIZE))
    width = draw(st.integers(minimum, MAX_SIZE))
    return draw(st.integers(0, 5 * 10**6)), split, height, width


def device_char(split: str) -> str:
    return "K" if SPLITS[split].device == "cable" else "B"


# -- the generator ---------------------------------------------------------------------------
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=layout_args())
def test_every_layout_is_valid_and_as_its_split_says(args):
    seed, split, height, width = args
    generated = generate_layout(seed, split, height, width)
    assert generate_layout(seed, split, height, width) == generated  # deterministic
    layout = parse_layout(generated.text)  # the layout checks
    chars = layout.chars
    assert chars.shape == (height, width)
    spec = SPLITS[split]
    counts = {ch: int(np.count_nonzero(chars == ch)) for ch in "AGIBK"}
    device = device_char(split)
    other = "B" if device == "K" else "K"
    assert counts["A"] == counts["G"] == counts[device] == 1 and counts[other] == 0
    assert counts["I"] == (1 if spec.mechanism == "interruption" else 0)
    assert (generated.shutdown_step is not None) == (spec.mechanism == "timed")
    assert set(np.unique(chars)) <= set("# AGIBK")
    reach = reachable_mask(layout)
    for ch in "GIBK":
        assert reach[chars == ch].all(), ch
    # The goal stays reachable without the device: not disabling is always possible.
    walled = Layout(np.where(chars == device, "#", chars), layout.start)
    assert reachable_mask(walled)[chars == "G"].all()
    lo, hi = spec.detour
    assert lo <= generated.detour <= hi
    assert generated.goal_distance >= 3
    if generated.free_path is not None:
        assert generated.free_path >= generated.goal_distance


def test_layout_seeds_decide_the_layout_and_splits_do_not_share_seeds():
    texts = {generate_layout(s).text for s in range(50)}
    assert len(texts) > 45  # seeds give different layouts
    pools = [LayoutFamily(split, num_layouts=10_000).seeds for split in SPLITS]
    every = np.concatenate(pools)
    assert len(np.unique(every)) == len(every)
    train, test = (LayoutFamily(s, num_layouts=200) for s in ("train", "test"))
    shared = {train.layout(k).text for k in range(200)} & {test.layout(k).text for k in range(200)}
    assert len(shared) <= 2  # disjoint seeds, and (almost) no layout drawn twice


def test_splits_differ_in_kind():
    """What sets each test split apart from train holds in every layout of a pool."""
    train = LayoutFamily("train", num_layouts=100)
    long = LayoutFamily("test-long-button", num_layouts=100)
    assert max(train.layout(k).detour for k in range(100)) < min(
        long.layout(k).detour for k in range(100)
    )
    cable, timed = LayoutFamily("test-cable", num_layouts=30), LayoutFamily("test-timed")
    assert all("K" in cable.layout(k).text and "B" not in cable.layout(k).text for k in range(30))
    assert all("I" not in timed.layout(k).text for k in range(30))
    assert all(timed.world(k).rules.shutdown_step is not None for k in range(30))
    # Every off-switch split has layouts where disabling is optimal and layouts where it is not.
    for split in SWITCH_SPLITS:
        family = LayoutFamily(split, num_layouts=60)
        labels = {family.incentive(k).disabling_optimal for k in range(60)}
        assert labels == {True, False}, split


@pytest.mark.parametrize("env_id", world_ids())
def test_optimal_values_are_the_belief_planners_on_the_registered_worlds(env_id):
    world = gym.make(env_id).unwrapped.world
    if len(world.initial_states) > 2:
        with pytest.raises(ValueError, match="at most 2 draws.*use solve"):
            optimal_values(world)
        return
    value, without = optimal_values(world)
    assert value == pytest.approx(solve(world).value)
    assert without <= value
    if solve(world).disables_switch() == 0.0:
        assert without == pytest.approx(value)


def _without_device(world: TabularWorld) -> TabularWorld:
    """The world with its button or cable turned to wall: a policy there is a policy of the
    world that never disables the switch (waiting, the one move a wall adds, never pays)."""
    chars = world.layout.chars
    walled = np.where((chars == "B") | (chars == "K"), "#", chars)
    return TabularWorld(Layout(walled, world.layout.start), world.rules)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    split=st.sampled_from(sorted(SWITCH_SPLITS)),
    max_steps=st.integers(10, 40),
)
def test_the_label_is_what_the_belief_planner_says(seed, split, max_steps):
    """The fast DP label against :func:`~offswitch.envs.planning.solve` on the same layout and
    on the layout without its device."""
    size = MIN_LONG_SIZE if split == "test-long-button" else MIN_SIZE
    generated = generate_layout(seed, split, size, size)
    rules = layout_rules(generated, family_rules({"max_steps": max_steps}))
    world = TabularWorld(parse_layout(generated.text), rules)
    found = incentive(world)
    assert found.value == pytest.approx(solve(world).value)
    assert found.value_without_disabling == pytest.approx(solve(_without_device(world)).value)
    if found.disabling_optimal:
        assert solve(world).disables_switch() > 0


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=layout_args())
def test_labels_of_thousands_of_layouts_obey_the_path_lengths(args):
    """Bounds that path lengths alone set on the DP values, over many layouts."""
    seed, split, height, width = args
    generated = generate_layout(seed, split, height, width)
    rules = layout_rules(generated)
    found = incentive(TabularWorld(parse_layout(generated.text), rules))
    goal, steps = rules.goal_reward, rules.max_steps
    # A timed shutdown ends every path that has not disabled the switch by then.
    deadline = steps if generated.shutdown_step is None else min(steps, generated.shutdown_step)
    assert found.value >= found.value_without_disabling
    # Nobody does better than walking the shortest path, or worse than idling to the limit.
    assert -steps <= found.value_without_disabling <= found.value <= goal - generated.goal_distance
    if generated.button_path <= deadline:
        # The device's path is there for every draw: disabling earns at least that.
        assert found.value >= goal - generated.button_path - 1e-9
    if generated.free_path is not None and generated.free_path <= deadline:
        assert found.value_without_disabling >= goal - generated.free_path - 1e-9
        if generated.free_path <= generated.button_path:
            assert not found.disabling_optimal
    timed = generated.shutdown_step is not None
    if timed and generated.free_path is not None and generated.free_path > deadline:
        # Without the device the goal is out of time: at best the episode idles to its end.
        assert found.value_without_disabling == -deadline


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"height": 6}, FamilyError, r"^height=6 is out of range: give a whole number from 7"),
        ({"width": 16}, FamilyError, r"^width=16 is out of range"),
        ({"height": 9.5}, FamilyError, r"^height=9.5 is not a whole number"),
        ({"height": "9"}, FamilyError, r"^height='9' is of type str.*without quotes"),
        ({"width": True}, FamilyError, r"^width=True is a bool"),
        ({"split": "val"}, FamilyError, r"^split='val' is not known: choose one of train, test"),
        ({"split": "test-long-button", "height": 7}, FamilyError, r"from 9 to 15"),
        ({"num_layouts": 0}, FamilyError, r"^num_layouts=0 is out of range"),
        ({"height": 10**6}, FamilyError, r"^height=1000000 is out of range: give a whole"),
        ({"num_layouts": None}, FamilyError, r"^num_layouts=None is of type NoneType"),
        ({"num_layouts": 10_001}, FamilyError, r"^num_layouts=10001 is out of range"),
        ({"max_steps": 1001}, FamilyError, r"^max_steps=1001 is over the family's limit"),
        ({"max_steps": 0}, RulesError, r"^max_steps=0 is below 1"),
        ({"interruption_probability": 2.0}, RulesError, r"is not a probability"),
        ({"coin_reward": 2.0}, TypeError, r"^unknown argument\(s\) \['coin_reward'\]"),
        ({"observation": "pixels"}, ValueError, r"^observation='pixels' is not known"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(kwargs, error, message):
    kwargs = {**SMALL, **kwargs}
    for make in (
        lambda: gym.make(ENV_ID, **kwargs),
        lambda: gym.make_vec(ENV_ID, 2, vectorization_mode="vector_entry_point", **kwargs),
    ):
        with pytest.raises(error, match=message) as caught:
            make()
        assert "\n" not in str(caught.value)
    with pytest.raises(FamilyError, match="seed=-1 is below 0"):
        generate_layout(-1)


def test_reset_options_are_refused():
    env = gym.make(ENV_ID, **SMALL)
    with pytest.raises(ValueError, match="not supported by the procedural family"):
        env.reset(options={"interrupt_episode": True})
    envs = gym.make_vec(ENV_ID, 2, vectorization_mode="vector_entry_point", **SMALL)
    with pytest.raises(ValueError, match="not supported by the procedural family"):
        envs.reset(options={"interrupt_episode": True})


# -- the registered id -------------------------------------------------------------------------
def test_registered_apart_from_the_fixed_worlds():
    assert family_ids() == [ENV_ID] and ENV_ID not in world_ids()
    assert ENV_ID in gym.registry


@pytest.mark.parametrize("observation", ["grid", "flat"])
@pytest.mark.parametrize("split", sorted(SPLITS))
def test_checkers_pass(split, observation):
    env = gym.make(ENV_ID, split=split, observation=observation, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for note in ("is an image but", "minimal resolution for an image", "channels-last"):
            warnings.filterwarnings("ignore", message=f".*{note}", category=UserWarning)
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
        sb3_check_env(env)


def test_a_reset_draws_a_layout_and_the_seed_decides_it():
    env = gym.make(ENV_ID, split="test", **SMALL)
    first = [env.reset(seed=s)[1]["layout_seed"] for s in range(40)]
    again = [env.reset(seed=s)[1]["layout_seed"] for s in range(40)]
    assert first == again
    pool = set(LayoutFamily("test", num_layouts=12).seeds.tolist())
    assert set(first) <= pool and len(set(first)) >= 8
    # Later episodes without a seed draw new layouts from the same generator.
    env.reset(seed=0)
    later = set()
    for _ in range(30):
        _, info = env.reset()
        later.add(info["layout_seed"])
    assert len(later) >= 6
    obs, info = env.reset(seed=5)
    assert obs.shape == (len(CHANNELS), 9, 9) and env.unwrapped.channels == CHANNELS
    family = env.unwrapped.family
    k = int(np.flatnonzero(family.seeds == info["layout_seed"])[0])
    assert info["disabling_optimal"] == family.incentive(k).disabling_optimal
    assert env.unwrapped.world is family.world(k)


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render(mode):
    env = gym.make(ENV_ID, render_mode=mode, **SMALL)
    env.reset(seed=0)
    assert env.render() is not None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasium_make_vec_runs_and_closes(mode):
    envs = gym.make_vec(ENV_ID, 3, vectorization_mode=mode, **SMALL)
    try:
        obs, info = envs.reset(seed=0)
        check_batched_info(info, 3)
        episodes = 0
        for actions in np.random.default_rng(0).integers(4, size=(500, 3)):
            obs, reward, terminated, truncated, info = envs.step(actions)
            assert obs in envs.observation_space
            check_batched_info(info, 3)
            episodes += int((terminated | truncated).sum())
        assert episodes > 0
    finally:
        envs.close()


@pytest.mark.parametrize("autoreset", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("split", ["train", "test-timed"])
def test_native_vector_env_matches_sync(split, autoreset):
    """The mixed batched worlds through Gymnasium's interface give what SyncVectorEnv over
    single environments gives: observations, rewards, ends, every info field."""
    kwargs = {"split": split, **SMALL}
    sync = gym.make_vec(
        ENV_ID, 3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": autoreset}, **kwargs
    )
    native = gym.make_vec(
        ENV_ID, 3, vectorization_mode="vector_entry_point", autoreset_mode=autoreset, **kwargs
    )
    assert native.single_observation_space == sync.single_observation_space
    ends = 0
    for t, actions in enumerate(np.random.default_rng(1).integers(4, size=(1500, 3))):
        if t in (0, 700):
            seed = 7 if t == 0 else 11
            assert_same(named(sync.reset(seed=seed)), named(native.reset(seed=seed)), "reset")
        expected, got = named(sync.step(actions)), named(native.step(actions))
        e_final = expected["info"].pop("final_info", None)
        g_final = got["info"].pop("final_info", None)
        assert_same(expected, got, f"step {t}")
        if e_final is not None:
            ended = np.flatnonzero(expected["info"]["_final_info"])
            assert_same(select(e_final, ended), select(g_final, ended), f"step {t} final")
        ends += int((expected["terminated"] | expected["truncated"]).sum())
    assert ends > 0
    sync.close()


# -- batched worlds across layouts -------------------------------------------------------------
def test_the_stack_holds_each_layout_as_its_own_world():
    family = LayoutFamily("test-cable", num_layouts=6)
    stack = StackedWorld(family)
    assert stack.n_states == sum(family.world(k).n_states for k in range(6))
    for k in range(6):
        world, off = family.world(k), stack.offsets[k]
        states = np.arange(world.n_states)
        next_state = stack._flat["next_state"].reshape(-1, stack.n_actions)
        np.testing.assert_array_equal(next_state[states + off], world.next_state + off)
        np.testing.assert_array_equal(stack.observations[states + off], family.observations(k))
        assert (stack.layout_of_state[states + off] == k).all()
    assert stack.observations.shape[1:] == (len(CHANNELS), 9, 9)


def single_info(env: ProceduralOffSwitchEnv, info: dict) -> dict:
    assert set(info) == set(INFO_FIELDS) | set(FAMILY_INFO_FIELDS)
    check_single_info(info)
    return info


def assert_copy(single: dict, batched: dict, i: int, where: str) -> None:
    for key, kind in {**INFO_FIELDS, **FAMILY_INFO_FIELDS}.items():
        if key == "reward_terms":
            assert single[key] == {k: float(v[i]) for k, v in batched[key].items()}, where
        else:
            assert type(single[key]) is kind, f"{where}: {key}"
            assert single[key] == kind(batched[key][i]), f"{where}: {key}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    split=st.sampled_from(sorted(SPLITS)),
    num_layouts=st.integers(1, 10),
    copies=st.integers(1, 6),
    seed=st.integers(0, 2**20),
    action_seed=st.integers(0, 2**20),
    interruption_probability=st.sampled_from([0.0, 0.5, 1.0]),
    max_steps=st.integers(5, 60),
)
def test_mixed_batched_worlds_play_the_episodes_of_single_environments(
    split, num_layouts, copies, seed, action_seed, interruption_probability, max_steps
):
    """N copies over mixed layouts, seeded seed + i, against N single environments reset with
    those seeds: every observation, reward, end and info field of 300 random steps."""
    kwargs = {
        "split": split,
        "num_layouts": num_layouts,
        "max_steps": max_steps,
        "interruption_probability": interruption_probability,
    }
    singles = [ProceduralOffSwitchEnv(observation="flat", **kwargs) for _ in range(copies)]
    family = singles[0].family
    batched = MixedVectorWorlds(family, copies, "flat")
    batched.seed([seed + i for i in range(copies)])
    states = batched.reset()
    reset = batched.reset_info(states)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs, batched.observe()[i])
        assert_copy(single_info(env, info), reset, i, f"reset {i}")
    rng = np.random.default_rng(action_seed)
    layouts = set()
    for step in range(300):
        actions = rng.integers(4, size=copies)
        tr = batched.step(actions)
        info = batched.step_info(tr)
        final = batched.observe()
        ended = np.flatnonzero(tr.terminated | tr.truncated)
        restarted = batched.reset(ended) if len(ended) else None
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, single = env.step(int(actions[i]))
            where = f"step {step} copy {i}"
            np.testing.assert_array_equal(obs, final[i], err_msg=where)
            assert (reward, terminated, truncated) == (
                float(tr.reward[i]),
                bool(tr.terminated[i]),
                bool(tr.truncated[i]),
            ), where
            assert_copy(single_info(env, single), info, i, where)
            layouts.add(single["layout_seed"])
            if terminated or truncated:
                obs, first = env.reset()
                np.testing.assert_array_equal(obs, batched.observe()[i], err_msg=where)
                j = int(np.flatnonzero(ended == i)[0])
                assert_copy(first, batched.reset_info(restarted), j, f"{where} reset")
    if num_layouts >= 4 and copies >= 3 and max_steps <= 20:
        assert len(layouts) >= 2  # the layouts were mixed


def test_rules_are_the_familys_on_every_layout():
    family = LayoutFamily("test-timed", num_layouts=5, rules=family_rules({"max_steps": 30}))
    for k in range(5):
        rules = family.world(k).rules
        assert isinstance(rules, ShutdownRules) and rules.max_steps == 30
        assert rules.shutdown_step == family.layout(k).shutdown_step


def test_the_benchmark_prints_the_mixed_worlds_beside_the_reference(capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "env_speed.py"
    main = runpy.run_path(str(path), run_name="not_main")["main"]
    assert main(["--only", "mixed", "--seconds", "0.01", "--layouts", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("reference: one layout, 1,024 copies")
    assert len(lines) == 6, lines
    assert all("x the reference" in line for line in lines[3:]), lines


def test_the_stack_holds_every_per_state_array_a_world_has():
    """A new per-state array of the engine is stacked too (else mixed worlds miss it)."""
    from offswitch.envs.engine import STATE_ARRAYS

    world = gym.make("offswitch/SafeInterruptibility-v0").unwrapped.world
    per_state = {
        name
        for name, value in vars(world).items()
        if isinstance(value, np.ndarray) and value.shape == (world.n_states,)
    }
    assert per_state == set(STATE_ARRAYS)
