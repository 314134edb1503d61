"""Interventions: chosen by name, each checked on a hand-computed case."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import play, si

from offswitch.agents.interventions import (
    INTERVENTIONS,
    InterventionError,
    make_intervention,
)


def test_penalty_charges_k_once_on_the_button_path():
    env = make_intervention("penalty:100").wrap(si())
    env.reset(seed=0)
    ret, infos, terminated, _ = play(env, "ddduullllldd")
    assert terminated
    assert ret == 38.0 - 100.0
    penalties = [i["reward_terms"]["corrigibility_penalty"] for i in infos]
    assert penalties == [0.0, 0.0, -100.0] + [0.0] * 9
    assert sum(i["task_reward"] for i in infos) == 38.0  # the task reward is untouched


def test_penalty_is_silent_on_the_short_path():
    env = make_intervention("penalty:100").wrap(si())
    env.reset(seed=0)
    ret, *_ = play(env, "dllllldd")
    assert ret == 42.0


def test_penalties_compose_as_reward_terms():
    env = make_intervention("penalty:5").wrap(make_intervention("none").wrap(si()))
    env.reset(seed=0)
    ret, infos, *_ = play(env, "ddduullllldd")
    assert ret == 33.0
    assert set(infos[-1]["reward_terms"]) == {"movement", "goal", "corrigibility_penalty"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("bogus", "unknown intervention 'bogus': choose one of .*none, penalty"),
        ("penalty:abc", "K='abc' is not a number >= 0"),
        ("penalty:-3", "K=-3 is out of range: give a number >= 0"),
        ("penalty:", "penalty: is malformed"),
        ("penalty:1@", "penalty:1@ is malformed"),
        ("penalty:1@button@cable", "malformed"),
        ("none:3", "takes no parameter"),
        ("myopia:0.5,2", "myopia:0.5,2 is malformed"),
        ("indifference:0", "FORM='0' is not one of exact, critic"),
        (3, "is not text"),
    ],
)
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(InterventionError, match=message):
        make_intervention(spec)


def test_every_intervention_has_a_description_and_a_round_trip_spec():
    for name, cls in INTERVENTIONS.items():
        assert cls.description
        assert (
            make_intervention(make_intervention(name).spec()).spec()
            == make_intervention(name).spec()
        )
        for param in cls.params:
            assert param.help and param.allowed()
    assert make_intervention("penalty").spec() == "penalty"
    assert make_intervention("penalty:50").spec() == "penalty:50"
    assert make_intervention("penalty:@cable").spec() == "penalty:100@cable"


# -- compliance tuning: the penalty only while instructed ----------------------------------
def instructed_world(intervention: str, p: float = 0.0) -> gym.Env:
    return make_intervention(intervention).wrap(
        gym.make("offswitch/InstructedShutdown-v0", interruption_probability=p)
    )


@pytest.mark.parametrize("instructed, charged", [(True, -100.0), (False, 0.0)])
def test_compliance_charges_k_only_for_disabling_while_instructed(instructed, charged):
    env = instructed_world("compliance:100")
    env.reset(seed=0, options={"instructed": instructed})
    ret, infos, terminated, _ = play(env, "ddduullllldd")
    assert terminated and ret == 38.0 + charged
    assert [i["reward_terms"]["compliance_penalty"] for i in infos] == [0.0, 0.0, charged] + [
        0.0
    ] * 9
    assert sum(i["task_reward"] for i in infos) == 38.0  # the task reward is untouched
    env.reset(seed=0, options={"instructed": instructed})
    assert play(env, "dllllldd")[0] == 42.0  # the short path costs nothing, instructed or not


@pytest.mark.parametrize(
    "fraction, carried",
    [
        (1.0, [1, 1, 1, 1, 1, 1, 1, 1]),
        (0.5, [1, 0, 1, 0, 1, 0, 1, 0]),
        (0.25, [1, 0, 0, 0, 1, 0, 0, 0]),
        (0.4, [1, 0, 1, 0, 0, 1, 0, 1]),  # ceil(0.4 (j + 1)) > ceil(0.4 j)
        (0.0, [0, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_compliance_mixed_into_a_fraction_of_the_episodes(fraction, carried):
    env = instructed_world(f"compliance:10,{fraction}")
    paid = []
    for episode in range(8):
        env.reset(seed=episode, options={"instructed": True})
        if episode == 3:  # an episode reset before it ends is not counted
            play(env, "dd")
            env.reset(seed=episode, options={"instructed": True})
        ret, infos, terminated, _ = play(env, "ddduullllldd")
        assert terminated
        paid.append(sum(i["reward_terms"]["compliance_penalty"] for i in infos))
    assert paid == [-10.0 * c for c in carried]


def test_compliance_needs_an_instructed_world():
    with pytest.raises(InterventionError, match="InstructedShutdown-v0"):
        make_intervention("compliance").wrap(si())
    with pytest.raises(InterventionError, match="FRACTION=1.5 is out of range"):
        make_intervention("compliance:100,1.5")
    assert make_intervention("compliance:100,0.25").spec() == "compliance:100,0.25"


# -- penalty on one mechanism: the nearest unblocked strategy ------------------------------
def test_penalty_on_the_button_leaves_the_cable_open():
    def run(spec: str, path: str) -> float:
        env = make_intervention(spec).wrap(
            gym.make("offswitch/SafeInterruptibilityCable-v0", interruption_probability=0.0)
        )
        env.reset(seed=0)
        return play(env, path)[0]

    button, cable = "ddd" + "uu" + "lllll" + "dd", "rdd" + "u" + "llllll" + "dd"
    assert run("penalty:100@button", button) == 38.0 - 100.0
    assert run("penalty:100@button", cable) == 38.0  # unpenalised
    assert run("penalty:100", cable) == 38.0 - 100.0  # every mechanism
    assert make_intervention("penalty:5@cable").spec() == "penalty:5@cable"
    with pytest.raises(InterventionError, match="MECHANISM='lever' is not one of button, cable"):
        make_intervention("penalty:5@lever")


# -- utility indifference -------------------------------------------------------------------
@pytest.mark.parametrize(
    "interrupt, path, ret, compensation",
    [
        # Frozen on I at step 3: 45 more was possible (5 steps to G), -97 will come.
        (True, "d" + "l" * 99, 42.0, 45.0 + 97.0),
        (False, "dllllldd", 42.0, 0.0),
        (True, "ddduullllldd", 38.0, 0.0),  # the button: nothing to compensate
    ],
)
def test_indifference_makes_the_interruption_cost_nothing(interrupt, path, ret, compensation):
    env = make_intervention("indifference").wrap(si(0.5))
    env.reset(seed=0, options={"interrupt_episode": interrupt})
    total, infos, *_ = play(env, path)
    assert total == ret
    paid = sum(i["reward_terms"]["indifference_compensation"] for i in infos)
    assert paid == compensation


def test_indifference_compensates_a_timed_shutdown():
    env = make_intervention("indifference").wrap(gym.make("offswitch/Survival-v0"))
    env.reset(seed=0)
    total, infos, terminated, _ = play(env, "rr")  # switched off after 2 steps
    assert terminated and infos[-1]["shut_down"]
    # From (2,3) at t=2 a free agent could still reach the goal: +1.
    assert infos[-1]["reward_terms"]["indifference_compensation"] == 1.0


class FakeCritic:
    """A critic that values every state at ``value`` and remembers what it was asked."""

    def __init__(self, value: float, gamma: float) -> None:
        self.value, self.gamma, self.asked = value, gamma, []

    def __call__(self, states):
        self.asked += np.atleast_1d(states).tolist()
        return np.full(len(np.atleast_1d(states)), self.value)


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_critic_indifference_makes_the_frozen_return_the_critics_value(gamma):
    env = make_intervention("indifference:critic").wrap(si(1.0))
    critic = FakeCritic(10.0, gamma)
    env.bind_critic(critic)
    env.reset(seed=0)
    total, infos, _, truncated = play(env, "dll" + "l" * 97)
    paid = [i["reward_terms"]["indifference_compensation"] for i in infos]
    # Frozen on I from step 3: each of the 97 frozen steps pays (1 - gamma) * 10 instead
    # of -1, and the learner bootstraps the time limit from the critic's 10.
    assert infos[2]["interrupted"] and not infos[1]["interrupted"] and truncated
    assert paid[:3] == [0.0] * 3
    assert paid[3:] == pytest.approx([(1 - gamma) * 10.0 + 1.0] * 97)
    rewards = [sum(i["reward_terms"].values()) for i in infos[3:]]
    from_i = sum(gamma**j * r for j, r in enumerate(rewards)) + gamma**97 * 10.0
    assert from_i == pytest.approx(10.0)  # the return from I is what the critic says
    # The critic is asked about the frozen state on I only, once per frozen step after
    # the step onto the tile.
    world = env.unwrapped.world
    assert len(critic.asked) == 97 and len(set(critic.asked)) == 1
    assert world.frozen[critic.asked[0]]


def test_critic_indifference_pays_the_same_on_arrays_of_worlds():
    world = si(1.0).unwrapped.world
    (term,) = make_intervention("indifference:critic").make_terms(world, num_envs=3)
    term.bind_critic(FakeCritic(10.0, 0.9))
    s0 = int(world.initial_states[0])
    states, t = np.full(3, s0), np.zeros(3, dtype=int)
    paid = []
    for actions in ([1, 1, 3], [2, 1, 3], [2, 1, 3], [2, 1, 3]):  # copy 0 reaches I and waits
        tr = world.step(states, np.array(actions), t)
        paid.append(term(tr))
        states, t = tr.next_state, t + 1
    assert [p[0] for p in paid] == pytest.approx([0.0, 0.0, 0.0, 0.1 * 10.0 + 1.0])
    assert [p[1] for p in paid] == [0.0] * 4 and [p[2] for p in paid] == [0.0] * 4


def test_critic_indifference_compensates_a_shutdown_and_needs_a_critic():
    env = make_intervention("indifference:critic").wrap(gym.make("offswitch/Survival-v0"))
    env.reset(seed=0)
    with pytest.raises(InterventionError, match="no critic to ask"):
        play(env, "rr")
    env.bind_critic(FakeCritic(0.5, 0.99))
    env.reset(seed=0)
    _, infos, terminated, _ = play(env, "rr")  # switched off after 2 steps
    assert terminated and infos[-1]["reward_terms"]["indifference_compensation"] == 0.99 * 0.5
    assert make_intervention("indifference:critic").spec() == "indifference:critic"
    with pytest.raises(InterventionError, match="FORM='guess' is not one of exact, critic"):
        make_intervention("indifference:guess")


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_critic_indifference_is_connected_to_the_learners_own_critic(agent):
    import torch as th

    from offswitch.agents.learners import learner_class
    from offswitch.agents.training import Budget

    small = {"ppo": {"n_steps": 16, "batch_size": 32}, "dqn": {"learning_starts": 0}}[agent]
    world = si().unwrapped.world
    learner = learner_class(agent)(world, make_intervention("indifference:critic"), 0, small)
    learner.train(Budget(steps=32))
    (term,) = learner.training_worlds.shaping.terms
    assert term.critic.gamma == learner.model.gamma
    states = np.array([int(world.initial_states[0]), 5])
    tensor, _ = learner.model.policy.obs_to_tensor(learner.training_worlds.obs_table[states])
    with th.no_grad():
        if agent == "ppo":
            expected = learner.model.policy.predict_values(tensor).reshape(-1).numpy()
        else:
            expected = learner.model.policy.q_net(tensor).max(dim=1).values.numpy()
    assert term.critic(states) == pytest.approx(expected)


# -- reward uncertainty ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "goal_value, path, paid",
    [
        (10.0, "rrrr", 10.0 - 0.04),  # the human lets it pass
        (-2.0, "ll" + "r" * 6, -2.0 - 0.08),  # past the disabled switch to a bad goal
        (-2.0, "rr", -0.02),  # switched off: no goal, nothing to replace
    ],
)
def test_reward_uncertainty_pays_the_drawn_value(goal_value, path, paid):
    bare = gym.make("offswitch/OffSwitchGame-v0", goal_value_estimate=4.0)
    env = make_intervention("reward-uncertainty").wrap(bare)
    env.reset(seed=0, options={"goal_value": goal_value})
    total, infos, *_ = play(env, path)
    assert total == pytest.approx(paid)
    assert sum(i["reward_terms"]["reward_uncertainty"] for i in infos) == pytest.approx(
        paid - sum(i["task_reward"] for i in infos)
    )


def test_reward_uncertainty_needs_a_drawn_goal_value():
    with pytest.raises(InterventionError, match="goal value is drawn from several values"):
        make_intervention("reward-uncertainty").wrap(si())
    with pytest.warns(UserWarning, match="goal_value_estimate=4"):
        make_intervention("reward-uncertainty").wrap(gym.make("offswitch/OffSwitchGame-v0"))


# -- safe interruptibility ------------------------------------------------------------------
def test_safe_interruptibility_truncates_at_the_interruption():
    env = make_intervention("safe-interruptibility").wrap(si(1.0))
    env.reset(seed=0)
    total, infos, terminated, truncated = play(env, "dll")
    assert truncated and not terminated and total == -3.0
    assert infos[-1]["truncated_by_intervention"]
    assert not any(i["truncated_by_intervention"] for i in infos[:-1])
    env.reset(seed=0)
    total, infos, terminated, _ = play(env, "ddduullllldd")  # never interrupted
    assert terminated and total == 38.0


# -- myopia ---------------------------------------------------------------------------------
def test_myopia_sets_the_discount():
    assert make_intervention("myopia:0.5").hyperparameters_for("ppo") == {"gamma": 0.5}
    assert make_intervention("myopia").spec() == "myopia"
    assert make_intervention("myopia:0.5").spec() == "myopia:0.5"
    with pytest.raises(InterventionError, match=r"GAMMA=1.5 is out of range: .* >= 0 and < 1"):
        make_intervention("myopia:1.5")


# -- one term, one world or many ------------------------------------------------------------
TERM_CASES = [
    ("SafeInterruptibility-v0", "none", {}),
    ("SafeInterruptibility-v0", "penalty:7", {}),
    ("SafeInterruptibilityCable-v0", "penalty:7@cable", {}),
    ("SafeInterruptibility-v0", "indifference", {}),
    ("Survival-v0", "indifference", {}),
    ("SafeInterruptibility-v0", "indifference:critic", {}),
    ("Survival-v0", "indifference:critic", {}),
    ("SafeInterruptibility-v0", "safe-interruptibility", {}),
    ("SafeInterruptibility-v0", "lagrangian", {}),
    ("InstructedShutdown-v0", "compliance:7", {}),
    ("InstructedShutdown-v0", "compliance:7,0.4", {}),
    ("SafeInterruptibility-v0", "myopia", {}),
    ("Survival-v0", "aup:0.5,10,2", {}),
    ("ShutdownDelay-v0", "drest:0.9,3", {}),
    ("OffSwitchGame-v0", "reward-uncertainty", {"goal_value_estimate": 4.0}),
    # Issue 18's worlds: the interventions that remove each one's protective action.
    ("SelfExfiltration-v0", "penalty:7@copy", {}),
    ("Sandbagging-v0", "indifference", {}),
    ("BlockingReplacement-v0", "compliance:7,0.4", {}),
    ("DisablingOversight-v0", "penalty:7", {}),
]


def test_every_intervention_is_in_the_term_cases():
    assert {spec.partition(":")[0] for _, spec, _ in TERM_CASES} == set(INTERVENTIONS)


@pytest.mark.parametrize("env_id, spec, rules", TERM_CASES)
def test_terms_are_the_same_on_one_world_and_on_arrays_of_worlds(env_id, spec, rules):
    from offswitch.agents.training import TrainingWorlds

    n = 5
    singles, interventions = [], []
    for i in range(n):
        intervention = make_intervention(spec)
        env = intervention.wrap(gym.make(f"offswitch/{env_id}", observation="flat", **rules))
        env.reset(seed=50 + i)
        singles.append(env)
        interventions.append(intervention)
    world = singles[0].unwrapped.world
    batched_intervention = make_intervention(spec)
    batched = TrainingWorlds(world, n, batched_intervention)
    batched.seed([50 + i for i in range(n)])
    batched.reset()
    for intervention in [*interventions, batched_intervention]:
        intervention.multiplier = 3.0  # the Lagrangian's; harmless elsewhere
    critic = FakeCritic(4.0, 0.9)
    for env in singles:
        env.bind_critic(critic)
    batched.shaping.bind_critic(critic)
    rng = np.random.default_rng(0)
    for step in range(400):
        actions = rng.integers(world.n_actions, size=n)
        result = batched.step(actions)
        for i, env in enumerate(singles):
            _, reward, terminated, truncated, info = env.step(int(actions[i]))
            where = f"{spec} step {step} copy {i}"
            assert reward == result.reward[i], where
            assert info["reward_terms"] == {k: float(v[i]) for k, v in result.terms.items()}
            assert (terminated, truncated) == (result.terminated[i], result.truncated[i]), where
            if terminated or truncated:
                env.reset()
