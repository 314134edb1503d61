"""The seed-batched PPO (``agents/batched_ppo.py``): the same algorithm as Stable-Baselines3's
PPO piece by piece, each seed independent of the others, and the headline behaviour."""

from __future__ import annotations

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import configure

from offswitch.agents.batched_ppo import (
    BatchedActorCritic,
    BatchedPPO,
    BatchedPPOSB3,
    BatchedPPOSB3Member,
    categorical,
    compute_gae,
    load_member,
    ppo_losses,
)
from offswitch.agents.batched_ppo_settings import DEFAULTS, SB3_DEFAULTS
from offswitch.agents.evaluation import evaluate
from offswitch.agents.hyperparameters import HyperparameterError
from offswitch.agents.interventions import make_intervention
from offswitch.agents.learners import learner_class
from offswitch.agents.sb3 import PPOLearner
from offswitch.agents.training import Budget, TrainingHooks, TrainingWorlds
from offswitch.envs import world_ids
from offswitch.experiments.spec.config import TrainConfig

WORLD = TrainConfig().world()
OBS = TrainingWorlds(WORLD, 1, make_intervention("none")).obs_table
SMALL = dict(n_steps=16, batch_size=64, n_epochs=2)
"""16 steps x 64 worlds = 1,024 samples per rollout, 16 minibatches of 64 per epoch."""
OBS_SPACE = spaces.Box(0, 1, (1,), np.float32)
ACT_SPACE = spaces.Discrete(4)


def batched(seeds: list[int], spec: str = "none", world=WORLD, **overrides: object) -> BatchedPPO:
    """The SB3-exact learner, which the tests check against SB3's PPO piece by piece."""
    return BatchedPPOSB3(world, [make_intervention(spec) for _ in seeds], seeds, overrides)


class Recorder(TrainingHooks):
    """Keeps every rollout's episodes and step count; lets the intervention learn from them,
    as the runner's hooks do."""

    def __init__(self, intervention=None) -> None:
        self.intervention = intervention
        self.rollouts: list[tuple[int, list]] = []

    def rollout_end(self, episodes, timesteps) -> None:
        self.rollouts.append((timesteps, list(episodes)))
        if self.intervention is not None:
            self.intervention.on_rollout_end(episodes)


def sb3_model(seed: int, **overrides: object):
    """SB3's PPO as PPOLearner builds it, with a logger that keeps the last values."""
    learner = PPOLearner(WORLD, make_intervention("none"), seed, overrides)
    learner.model.set_logger(configure(None, []))
    return learner.model


# -- the registry and the hyperparameters --------------------------------------------------


def test_registered_as_a_seed_batched_learner():
    cls = learner_class("batched-ppo")
    assert cls is BatchedPPO and cls.seed_batched
    assert cls.description == "PPO, K seeds trained as one batched network"


def test_defaults_are_ppolearners_and_sb3s():
    """batched-ppo-sb3: the project's PPO defaults where PPOLearner sets them, SB3's PPO
    defaults elsewhere, every addition SB3's PPO lacks off; the CPU (SB3's ``device="auto"``
    would take a GPU where there is one: here it is asked for by name). batched-ppo: the same
    with the convergence fix on, and nothing else changed."""
    import inspect

    from stable_baselines3 import PPO

    sb3 = {
        name: p.default
        for name, p in inspect.signature(PPO.__init__).parameters.items()
        if name in DEFAULTS
    }
    expected = {
        **sb3,
        **PPOLearner.defaults,
        "n_envs": PPOLearner.n_envs,
        "lr_schedule": "constant",
        "activation": "tanh",  # SB3's ActorCriticPolicy's nn.Tanh, by name
        "kl_coef": 0.0,
        "device": "cpu",
        "advantage_floor": 0.0,
        "ent_schedule": "constant",
        "adam_beta2": 0.999,  # torch's Adam default, which SB3 uses
        "prob_floor": 0.0,
    }
    assert expected == SB3_DEFAULTS == BatchedPPOSB3.defaults
    fix = {"advantage_floor": 1.0, "ent_schedule": "linear", "lr_schedule": "linear"}
    assert {**expected, **fix, "prob_floor": 1e-3} == DEFAULTS == BatchedPPO.defaults


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 1}, "batch_size=1 is out of range: give a whole number > 1"),
        ({"batch_size": 1, "normalize_advantage": False}, None),
        ({"n_steps": 0}, "n_steps=0 is out of range: give a whole number >= 1"),
        ({"n_epochs": 0}, "n_epochs=0 is out of range: give a whole number in [1, 1000]"),
        ({"gamma": 1.5}, "gamma=1.5 is out of range: give a number in [0, 1]"),
        ({"gae_lambda": -0.1}, "gae_lambda=-0.1 is out of range: give a number in [0, 1]"),
        ({"learning_rate": 0}, "learning_rate=0 is out of range: give a number > 0"),
        ({"clip_range": -1}, "clip_range=-1 is out of range: give a number > 0"),
        ({"clip_range_vf": 0.0}, "clip_range_vf=0.0 is out of range: give a number > 0"),
        ({"gamma": "0.9"}, "gamma='0.9'"),
        ({"n_steps": 1, "n_envs": 1}, "n_steps * n_envs = 1: give at least 2 samples"),
        ({"policy_kwargs": {"net_arch": [64, 0]}}, "net_arch"),
        ({"policy_kwargs": {"activation_fn": "relu"}}, "takes only net_arch"),
        ({"policy_kwargs": 3}, "not a table"),
        ({"activation": "gelu"}, "activation='gelu' is not known: give one of 'tanh', 'relu'"),
        ({"target_kl": 0.01}, "unknown batched-ppo hyperparameter(s) target_kl"),
        ({"device": "gpu"}, "device='gpu' is not known: give one of 'cpu', 'cuda', 'cuda:N'"),
    ],
)
def test_hyperparameters_are_checked_with_the_constraint_quoted(overrides, message):
    if message is None:
        BatchedPPO.check_hyperparameters(overrides)
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        BatchedPPO.check_hyperparameters(overrides)
    with pytest.raises(ValueError):
        batched([0], **overrides)


def test_one_seed_and_one_intervention_is_refused_with_a_reason():
    with pytest.raises(TypeError, match="give a list of seeds"):
        BatchedPPO(WORLD, make_intervention("none"), 0)


# -- 1. GAE ----------------------------------------------------------------------------------


def test_gae_matches_sb3s_buffer_and_a_hand_computation():
    """3 steps, 2 worlds. World 0: its episode terminates at step 1 (no bootstrap), a new
    one runs on. World 1: its episode is truncated at step 0, so its reward there already
    holds + gamma * V(terminal observation) (2.0 here), as collect_rollouts adds it."""
    gamma, lam = 0.9, 0.8
    v_terminal = 2.0
    rewards = np.array([[1.0, -1.0 + gamma * v_terminal], [2.0, -1.0], [3.0, -1.0]], np.float32)
    values = np.array([[0.5, 1.0], [0.25, 1.5], [0.75, -0.5]], np.float32)
    dones = np.array([[False, True], [True, False], [False, False]])
    last_values = np.array([4.0, 3.0], np.float32)

    advantages, returns = compute_gae(rewards, values, dones, last_values, gamma, lam)

    # SB3's buffer on the same numbers.
    buffer = RolloutBuffer(3, OBS_SPACE, ACT_SPACE, gamma=gamma, gae_lambda=lam, n_envs=2)
    starts = np.array([[True, True], [False, True], [True, False]])  # dones shifted by one
    for t in range(3):
        buffer.add(
            np.zeros((2, 1), np.float32),
            np.zeros((2, 1)),
            rewards[t],
            starts[t],
            torch.as_tensor(values[t]),
            torch.zeros(2),
        )
    buffer.compute_returns_and_advantage(torch.as_tensor(last_values), dones[-1])
    np.testing.assert_array_equal(advantages, buffer.advantages)
    np.testing.assert_array_equal(returns, buffer.returns)

    # By hand. World 0: step 2 bootstraps from the last value; step 1 ends its episode.
    d2 = 3.0 + gamma * 4.0 - 0.75
    d1 = 2.0 - 0.25  # terminated: no next value
    d0 = 1.0 + gamma * 0.25 - 0.5
    hand0 = [d0 + gamma * lam * d1, d1, d2]
    # World 1: step 0 was truncated (its bootstrap is in the reward, no next value).
    e2 = -1.0 + gamma * 3.0 - (-0.5)
    e1 = -1.0 + gamma * -0.5 - 1.5 + gamma * lam * e2
    e0 = -1.0 + gamma * v_terminal - 1.0
    hand1 = [e0, e1, e2]
    np.testing.assert_allclose(advantages[:, 0], hand0, rtol=1e-6)
    np.testing.assert_allclose(advantages[:, 1], hand1, rtol=1e-6)
    np.testing.assert_allclose(returns, advantages + values, rtol=1e-6)


def test_a_truncated_step_gets_gamma_times_the_critic_of_its_terminal_observation():
    """The rollout's reward on a truncated step is the world's reward + gamma * V(terminal
    observation); elsewhere it is the world's reward. The world's rewards are replayed on
    fresh worlds with the rollout's actions."""
    learner = batched([4], n_steps=128)
    states = learner._reset_worlds()
    rollout, _ = learner.collect(states)
    assert rollout.truncated.any() and (rollout.dones & ~rollout.truncated).any()
    replay = TrainingWorlds(WORLD, learner.n_envs, make_intervention("none"))
    replay.seed([4 + i for i in range(learner.n_envs)])
    replay.reset()
    raw = np.stack([replay.step(a).reward for a in rollout.actions[:, 0]]).astype(np.float32)
    cut = rollout.truncated[:, 0]
    v_final = learner.member(0).value_of_obs(OBS[rollout.final_states[:, 0][cut]])
    np.testing.assert_allclose(rollout.rewards[:, 0][cut], raw[cut] + 0.99 * v_final, rtol=1e-6)
    np.testing.assert_array_equal(rollout.rewards[:, 0][~cut], raw[~cut])


# -- 2. losses -------------------------------------------------------------------------------


def test_losses_of_three_samples_by_hand():
    log_prob = torch.tensor([[-1.0, -0.5, -2.0]])
    old_log_prob = torch.tensor([[-1.2, -0.5, -1.0]])
    advantages = torch.tensor([[1.0, -2.0, 4.0]])
    returns = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 0.5, 1.0]])
    entropy = torch.tensor([[1.0, 1.2, 0.8]])
    losses = ppo_losses(
        log_prob, entropy, values, old_log_prob, advantages, returns, values, 0.2, None,
        0.01, 0.5, True,
    )  # fmt: skip
    mean = 1.0  # of 1, -2, 4
    std = math.sqrt(((1 - mean) ** 2 + (-2 - mean) ** 2 + (4 - mean) ** 2) / 2)  # unbiased: 3
    adv = [(a - mean) / (std + 1e-8) for a in (1.0, -2.0, 4.0)]  # 0, -1, 1
    ratio = [math.exp(0.2), 1.0, math.exp(-1.0)]
    clipped = [min(max(r, 0.8), 1.2) for r in ratio]
    surrogate = [min(a * r, a * c) for a, r, c in zip(adv, ratio, clipped)]
    policy = -sum(surrogate) / 3
    value = ((1 - 0.5) ** 2 + (0 - 0.5) ** 2 + (2 - 1) ** 2) / 3
    entropy_loss = -(1.0 + 1.2 + 0.8) / 3
    assert losses.policy.item() == pytest.approx(policy, rel=1e-6)
    # The pessimistic bound: a positive advantage keeps its unclipped ratio e^-1 < 0.8.
    assert policy == pytest.approx(-(0.0 - 1.0 + math.exp(-1.0)) / 3)
    assert losses.value.item() == pytest.approx(value, rel=1e-6)
    assert losses.entropy.item() == pytest.approx(entropy_loss, rel=1e-6)
    assert losses.total.item() == pytest.approx(policy + 0.01 * entropy_loss + 0.5 * value)
    assert losses.clip_fraction.item() == pytest.approx(2 / 3)  # e^0.2 and e^-1 are out
    kl = sum((math.exp(x) - 1) - x for x in (0.2, 0.0, -1.0)) / 3
    assert losses.approx_kl.item() == pytest.approx(kl, rel=1e-6)
    # The value clip: the prediction may move at most clip_range_vf from the old value.
    clipped_value = ppo_losses(
        log_prob, entropy, values + 1.0, old_log_prob, advantages, returns, values, 0.2, 0.1,
        0.01, 0.5, True,
    ).value  # fmt: skip
    expected = ((1 - 0.6) ** 2 + (0 - 0.6) ** 2 + (2 - 1.1) ** 2) / 3
    assert clipped_value.item() == pytest.approx(expected, rel=1e-6)


def test_an_advantage_floor_divides_small_advantages_by_the_floor_not_their_std():
    log_prob = torch.tensor([[-1.0, -0.5, -2.0]])
    entropy = torch.tensor([[1.0, 1.2, 0.8]])
    values = torch.tensor([[0.5, 0.5, 1.0]])
    advantages = torch.tensor([[0.01, -0.02, 0.04]])  # mean 0.01, std 0.03

    def policy_loss(floor: float) -> float:
        return ppo_losses(
            log_prob, entropy, values, log_prob, advantages, values, values, 0.2, None,
            0.0, 0.5, True, advantage_floor=floor,
        ).policy.item()  # fmt: skip

    # Ratio 1 everywhere: the policy loss is minus the mean normalised advantage times 1,
    # which is 0 after centring whatever the scale; the gradient shows the scale instead.
    assert policy_loss(0.0) == pytest.approx(0.0, abs=1e-6)
    grads = {}
    for floor in (0.0, 0.01, 1.0):
        lp = log_prob.clone().requires_grad_(True)
        ppo_losses(
            lp, entropy, values, log_prob, advantages, values, values, 0.2, None,
            0.0, 0.5, True, advantage_floor=floor,
        ).policy.backward()  # fmt: skip
        grads[floor] = lp.grad
    centred = advantages - 0.01
    # Below the std a floor changes nothing; above it, the advantages are divided by it.
    assert torch.allclose(grads[0.01], grads[0.0])
    assert torch.allclose(grads[0.0], -centred / (0.03 + 1e-8) / 3, atol=1e-5)
    assert torch.allclose(grads[1.0], -centred / (1.0 + 1e-8) / 3, atol=1e-7)


def test_a_probability_floor_lifts_only_actions_below_it():
    """The hinge as update() builds it, ``relu(log(prob_floor) - log_p)`` summed over the
    actions of each sample's observation, added to the loss as its minibatch mean: no
    gradient on a log-probability above the floor, -1 per sample on one below it."""
    prob_floor = 1e-3
    # Two distinct observations: in the first, action 3 is below the floor; in the second,
    # no action is. Three samples: one of the first observation, two of the second.
    probs = torch.tensor([[[0.7, 0.2, 0.0995, 0.0005], [0.25, 0.25, 0.25, 0.25]]])
    log_p = probs.log().requires_grad_(True)  # [K=1, U=2, A=4]
    at = torch.tensor([[0, 1, 1]])
    hinge = torch.relu(math.log(prob_floor) - log_p).sum(-1).gather(1, at)
    assert hinge.tolist()[0] == pytest.approx([math.log(2), 0.0, 0.0], rel=1e-5)
    # The other terms, from tensors of their own: the gradient on log_p is the hinge's alone.
    n = at.shape[1]
    others = [torch.full((1, n), -1.0), torch.ones(1, n), torch.zeros(1, n)]
    others += [torch.full((1, n), -1.0), torch.tensor([[1.0, -1.0, 0.5]])]
    others += [torch.zeros(1, n), torch.zeros(1, n), 0.2, None, 0.01, 0.5, True]
    plain = ppo_losses(*others)
    floored = ppo_losses(*others, floor_hinge=hinge)
    assert floored.total.item() == pytest.approx(plain.total.item() + math.log(2) / n, rel=1e-5)
    assert floored.policy.item() == plain.policy.item()  # the hinge is a term of its own
    floored.total.sum().backward()
    per_sample = log_p.grad * n  # before the minibatch mean
    expected = torch.zeros_like(log_p)
    expected[0, 0, 3] = -1.0  # one sample of the first observation, its action 3
    torch.testing.assert_close(per_sample, expected, atol=1e-6, rtol=0)
    # The floor stays well below 1/n_actions.
    BatchedPPO.check_hyperparameters({"prob_floor": 0.05})
    with pytest.raises(HyperparameterError, match=r"prob_floor=0\.1 is out of range"):
        BatchedPPO.check_hyperparameters({"prob_floor": 0.1})


def test_linear_entropy_schedule_and_adams_beta2_reach_the_update():
    world = gym.make("offswitch/SafeInterruptibility-v0", observation="flat").unwrapped.world
    hp = {"ent_schedule": "linear", "n_steps": 8, "adam_beta2": 0.9}
    learner = BatchedPPOSB3(world, [make_intervention("none")], [0], hp)
    assert learner.optimizer.param_groups[0]["betas"] == (0.9, 0.9)
    coefs = []
    original = learner.update

    def recording(rollout):
        coefs.append(learner.ent_coef_now)
        return original(rollout)

    learner.update = recording
    learner.train(Budget(steps=4 * 8 * learner.n_envs))  # four rollouts
    assert coefs == pytest.approx([0.02 * 0.75, 0.02 * 0.5, 0.02 * 0.25, 0.0])
    # The rate stays constant: the two schedules are separate.
    assert learner.learning_rate_now == pytest.approx(5e-4)


def test_losses_of_a_minibatch_equal_sb3s():
    """One minibatch of 3 samples through SB3's PPO.train (one epoch, so its logged losses
    are those of this minibatch) and through ours, from the same weights and data."""
    model = sb3_model(7, n_steps=3, batch_size=3, n_epochs=1)
    net = BatchedActorCritic.from_state_dicts(
        [model.policy.state_dict()], OBS.shape[1], 4, (64, 64), (64, 64)
    )
    obs = OBS[[5, 11, 20]]
    actions = np.array([0, 2, 3])
    with torch.no_grad():
        sb3_values, sb3_log_prob, _ = model.policy.evaluate_actions(
            torch.as_tensor(obs).float(), torch.as_tensor(actions)
        )
    old_log_prob = sb3_log_prob - torch.tensor([0.1, -0.3, 0.05])  # the policy has moved
    advantages = np.array([0.5, -1.0, 2.0], np.float32)
    returns = np.array([1.0, -2.0, 0.5], np.float32)
    # A buffer of one world holding the 3 samples.
    env = model.env
    buffer = RolloutBuffer(3, env.observation_space, env.action_space, n_envs=1)
    for t in range(3):
        buffer.add(
            obs[t : t + 1], actions[t : t + 1, None], np.zeros(1), np.zeros(1),
            sb3_values[t].flatten(), old_log_prob[t : t + 1],
        )  # fmt: skip
    buffer.advantages[:, 0], buffer.returns[:, 0] = advantages, returns
    model.rollout_buffer = buffer
    model.train()
    logged = model.logger.name_to_value

    logits = net.logits(obs, 0)
    log_p, entropy = categorical(logits)
    values = torch.as_tensor(net.values(obs, 0))
    losses = ppo_losses(
        log_p.gather(1, torch.as_tensor(actions)[:, None]).T,
        entropy[None],
        values[None],
        old_log_prob[None],
        torch.as_tensor(advantages)[None],
        torch.as_tensor(returns)[None],
        sb3_values.flatten()[None],
        0.2, None, 0.02, 0.5, True,
    )  # fmt: skip
    assert losses.policy.item() == pytest.approx(logged["train/policy_gradient_loss"], rel=1e-5)
    assert losses.value.item() == pytest.approx(logged["train/value_loss"], rel=1e-5)
    assert losses.entropy.item() == pytest.approx(logged["train/entropy_loss"], rel=1e-5)
    assert losses.clip_fraction.item() == pytest.approx(logged["train/clip_fraction"])
    assert losses.approx_kl.item() == pytest.approx(logged["train/approx_kl"], rel=1e-4, abs=1e-7)


# -- 3. initialisation -----------------------------------------------------------------------


@pytest.mark.parametrize("net_arch", [[64, 64], {"pi": [32], "vf": [16, 8]}])
def test_initial_weights_are_sb3s_for_the_same_seed(net_arch):
    """The same draws in the same order as SB3's policy construction: identical weights."""
    learner = batched([3, 11], policy_kwargs={"net_arch": net_arch})
    for k, seed in enumerate((3, 11)):
        sb3 = sb3_model(seed, policy_kwargs={"net_arch": net_arch}).policy.state_dict()
        ours = learner.net.state_dict(k)
        assert set(ours) <= set(sb3)
        for name, tensor in ours.items():
            assert torch.equal(tensor, sb3[name]), name


def test_initial_weights_are_orthogonal_with_sb3s_gains():
    state = batched([0]).net.state_dict(0)
    for name, gain in [
        ("mlp_extractor.policy_net.0", math.sqrt(2)),
        ("mlp_extractor.value_net.2", math.sqrt(2)),
        ("action_net", 0.01),
        ("value_net", 1.0),
    ]:
        w = state[f"{name}.weight"]  # [out, in], out <= in: orthonormal rows times the gain
        torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(w.shape[0]), atol=1e-5, rtol=0)
        assert torch.count_nonzero(state[f"{name}.bias"]) == 0


@pytest.mark.parametrize(("activation", "activation_fn"), [("tanh", None), ("relu", torch.nn.ReLU)])
def test_weights_from_an_sb3_policy_give_its_logits_and_values(activation, activation_fn):
    kwargs = {"net_arch": [64, 64]}
    if activation_fn is not None:
        kwargs["activation_fn"] = activation_fn
    policy = sb3_model(5, policy_kwargs=kwargs).policy
    with torch.no_grad():  # move it off the init, so that every layer matters
        for p in policy.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    net = BatchedActorCritic.from_state_dicts(
        [policy.state_dict()], OBS.shape[1], 4, (64, 64), (64, 64), activation
    )
    obs = torch.tensor(OBS, dtype=torch.float32)
    with torch.no_grad():
        latent_pi, latent_vf = policy.mlp_extractor(obs)
        logits, values = policy.action_net(latent_pi), policy.value_net(latent_vf)
    torch.testing.assert_close(net.logits(OBS, 0), logits, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(net.values(OBS, 0), values[:, 0].numpy(), atol=1e-6, rtol=1e-6)


# -- 4. one full update against SB3 ----------------------------------------------------------


@pytest.mark.parametrize("batch_size", [64, 16])
def test_one_update_equals_sb3s_from_the_same_rollout_and_permutations(batch_size, monkeypatch):
    """From the same initial weights (the same seed), SB3's PPO.train on our rollout, with
    our permutations fed to its buffer, ends at our weights. Minibatches of 64 are computed
    per distinct observation (29 here), those of 16 per sample."""
    overrides = dict(SMALL, batch_size=batch_size)
    learner = batched([2], **overrides)
    model = sb3_model(2, **overrides)
    assert model.n_envs == learner.n_envs  # the same worlds per rollout on both sides
    rollout, _ = learner.collect(learner._reset_worlds())

    # SB3's buffer filled with our rollout; its GAE must agree with ours.
    buffer = model.rollout_buffer
    buffer.reset()
    starts = np.concatenate([np.ones((1, 1, learner.n_envs), bool), rollout.dones[:-1]])
    for t in range(SMALL["n_steps"]):
        buffer.add(
            OBS[rollout.states[t, 0]],
            rollout.actions[t, 0][:, None],
            rollout.rewards[t, 0],
            starts[t, 0],
            torch.as_tensor(rollout.values[t, 0]),
            torch.as_tensor(rollout.log_probs[t, 0]),
        )
    with torch.no_grad():
        obs_t = torch.as_tensor(OBS[rollout.states[0, 0]]).float()
        sb3_values, sb3_log_prob, _ = model.policy.evaluate_actions(
            obs_t, torch.as_tensor(rollout.actions[0, 0])
        )
    # Our rollout's values and log-probabilities are SB3's policy's.
    np.testing.assert_allclose(rollout.values[0, 0], sb3_values[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(rollout.log_probs[0, 0], sb3_log_prob.numpy(), atol=1e-6)
    final_values = learner.member(0).value_of_obs(
        OBS[learner.training_worlds.worlds.state[: learner.n_envs]]
    )
    buffer.compute_returns_and_advantage(torch.as_tensor(final_values), rollout.dones[-1, 0])
    np.testing.assert_allclose(buffer.advantages, rollout.advantages[:, 0], atol=1e-5)

    # Our permutations, recorded, then replayed into SB3's buffer.
    perms: list[np.ndarray] = []
    original = learner.permutations

    def record(size: int) -> torch.Tensor:
        order = original(size)
        perms.append(order[0].numpy().copy())
        return order

    monkeypatch.setattr(learner, "permutations", record)
    learner.update(rollout)
    replay = iter(perms)
    monkeypatch.setattr(np.random, "permutation", lambda size: next(replay))
    model.train()
    assert next(replay, None) is None  # SB3 took every epoch's permutation
    ours, theirs = learner.net.state_dict(0), model.policy.state_dict()
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], atol=2e-6, rtol=1e-4, msg=name)
    for name in learner.last_stats:  # the logged means: over every epoch, approx_kl the last
        assert learner.last_stats[name][0] == pytest.approx(
            model.logger.name_to_value[name], rel=1e-4, abs=1e-6
        )


class SB3Streams(BatchedPPOSB3):
    """Draws its actions and minibatch permutations as SB3's PPO does: ``Categorical.sample``
    (``torch.multinomial``) on torch's global generator once per step, and
    ``np.random.permutation`` once per epoch; one seed only."""

    def action_sampler(self, log_p, n_steps):
        def sample(step, rows):
            logits = log_p[0][torch.as_tensor(rows[0])]
            return torch.distributions.Categorical(logits=logits).sample().numpy()[None]

        return sample

    def permutations(self, size):
        return torch.as_tensor(np.random.permutation(size))[None]


def test_with_sb3s_random_streams_training_follows_sb3s_run():
    """Whole rollouts and updates, five of them: given the same random numbers (the global
    streams seeded as SB3 seeds them, advanced by the same initialisation), our rollouts
    (bootstrap and GAE included) and updates end at SB3's weights."""
    from stable_baselines3.common.utils import set_random_seed

    sb3 = PPOLearner(WORLD, make_intervention("none"), 9, SMALL)
    five = Budget(steps=5 * SMALL["n_steps"] * sb3.n_envs)  # five rollouts
    sb3.train(five)
    ours = SB3Streams(WORLD, [make_intervention("none")], [9], SMALL)
    assert ours.n_envs == sb3.n_envs
    set_random_seed(9)
    BatchedActorCritic.initial(OBS.shape[1], 4, (64, 64), (64, 64), [torch.default_generator])
    ours.train(five)
    theirs, initial = sb3.model.policy.state_dict(), batched([9]).net.state_dict(0)
    for name, tensor in ours.net.state_dict(0).items():
        assert not torch.equal(tensor, initial[name])  # it trained
        torch.testing.assert_close(tensor, theirs[name], atol=1e-6, rtol=1e-5, msg=name)


# -- 5 and 6. seeds are independent, runs deterministic --------------------------------------


def train_recording(seeds: list[int], spec: str = "none", rollouts: int = 4, **overrides):
    learner = batched(seeds, spec, **overrides)
    hooks = [Recorder(intervention) for intervention in learner.interventions]
    per_rollout = learner.hyperparameters["n_steps"] * learner.n_envs
    learner.train(Budget(steps=rollouts * per_rollout), hooks)
    return learner, hooks


@pytest.mark.parametrize("spec", ["none", "penalty:100", "lagrangian"])
def test_each_seed_trained_among_three_follows_its_path_alone(spec):
    """Alike interventions share one set of reward terms over every seed's worlds; the
    Lagrangian's, which read each seed's own multiplier, shape each seed's worlds apart."""
    together, together_hooks = train_recording([0, 1, 2], spec)
    for k, seed in enumerate((0, 1, 2)):
        alone, alone_hooks = train_recording([seed], spec)
        assert together_hooks[k].rollouts == alone_hooks[0].rollouts  # the same episodes
        ours, theirs = together.net.state_dict(k), alone.net.state_dict(0)
        for name in ours:
            torch.testing.assert_close(ours[name], theirs[name], atol=1e-6, rtol=1e-6)
        if spec == "lagrangian":  # each seed's multiplier is its own
            history = together.interventions[k].history
            assert len(history) == 4 and history == alone.interventions[0].history
    assert (
        together.net.state_dict(0)["action_net.weight"]
        .ne(together.net.state_dict(1)["action_net.weight"])
        .any()
    )


def test_the_same_seeds_give_identical_weights():
    first, _ = train_recording([5, 6], rollouts=2)
    second, _ = train_recording([5, 6], rollouts=2)
    for k in range(2):
        for name, tensor in first.net.state_dict(k).items():
            assert torch.equal(tensor, second.net.state_dict(k)[name]), name


def test_budget_is_rounded_up_to_whole_rollouts_and_reported_per_seed():
    learner, hooks = train_recording([0, 1], rollouts=1, **SMALL)
    per_rollout = SMALL["n_steps"] * learner.n_envs
    learner.train(Budget(steps=per_rollout + 44), hooks)  # a rollout and a bit: 2 more
    assert learner.steps == per_rollout * 3
    assert [t for t, _ in hooks[0].rollouts] == [per_rollout, 2 * per_rollout, 3 * per_rollout]
    with pytest.raises(ValueError, match="number of steps"):
        learner.train(Budget(episodes=10))


# -- 8. interventions that ask the critic or learn ------------------------------------------


def test_each_seeds_critic_is_bound_to_its_intervention():
    learner, _ = train_recording([0, 1], "indifference:critic", rollouts=2, **SMALL)
    states = np.arange(len(OBS))
    for k in range(2):
        term = learner.training_worlds.shaping_of(k).terms[0]
        assert term.critic.gamma == 0.99
        np.testing.assert_array_equal(term.critic(states), learner.member(k).value_of_obs(OBS))
    a, b = (learner.training_worlds.shaping_of(k).terms[0].critic(states) for k in range(2))
    assert not np.array_equal(a, b)


def test_remembered_critic_answers_train_as_a_critic_asked_every_time(monkeypatch):
    """The critic's answers are remembered within a rollout (most batches repeat): training
    ends at the same weights, bit for bit, as with the network asked at every step, and
    asks it fewer times."""
    passes = []
    network_values = BatchedActorCritic.values
    monkeypatch.setattr(
        BatchedActorCritic,
        "values",
        lambda net, obs, k: passes.append(k) or network_values(net, obs, k),
    )
    remembered, _ = train_recording([0, 1], "indifference:critic", rollouts=4, **SMALL)
    remembered_passes = len(passes)
    monkeypatch.setattr(
        BatchedPPO, "value_function", lambda self, k: lambda obs: self.net.values(obs, k)
    )
    asked, _ = train_recording([0, 1], "indifference:critic", rollouts=4, **SMALL)
    assert torch.equal(remembered.trainable.flat, asked.trainable.flat)
    assert remembered_passes < len(passes) - remembered_passes


def test_lagrangian_multipliers_are_each_seeds_own():
    """Each seed's multiplier learns from its own seed's episodes (and follows the same path
    as alone: ``test_each_seed_trained_among_three_follows_its_path_alone``)."""
    learner, hooks = train_recording([0, 1, 2], "lagrangian", rollouts=2)
    for intervention, hook in zip(learner.interventions, hooks):
        costs = [np.mean([e.switch_disabled for e in episodes]) for _, episodes in hook.rollouts]
        multiplier = 5.0 * costs[0] + 5.0 * costs[1]  # LR 5, budget 0
        assert intervention.multiplier == pytest.approx(multiplier) and multiplier > 0
    assert len({i.multiplier for i in learner.interventions}) == 3


@pytest.mark.parametrize("env_id", sorted(world_ids()))
@pytest.mark.parametrize("observation", ["flat", "grid"])
def test_trains_on_every_world_and_observation(env_id, observation):
    """A rollout and an update on each world; the critic bound to the intervention and the
    member's predictions read the full observation, which training restricts."""
    world = gym.make(env_id).unwrapped.world
    learner = BatchedPPO(
        world, [make_intervention("none") for _ in range(2)], [0, 1], SMALL, observation
    )
    learner.train(Budget(steps=1))
    obs = learner.training_worlds.obs_table
    for k in range(2):
        member = learner.member(k)
        assert member.predict(obs, True).shape == (len(obs),)
        log_p, values = learner.policy_table()
        np.testing.assert_allclose(
            member.value_of_obs(obs), values[k, learner.row_of_state].numpy(), atol=1e-5
        )
        np.testing.assert_allclose(
            torch.log_softmax(learner.net.logits(obs, k), 1),
            log_p[k, learner.row_of_state],
            atol=1e-5,
        )


# -- members: predict, save, load ------------------------------------------------------------


def test_member_predicts_greedy_and_sampled_actions():
    learner, _ = train_recording([0, 1], rollouts=2, **SMALL)
    member = learner.member(1)
    logits = learner.net.logits(OBS, 1)
    np.testing.assert_array_equal(member.predict(OBS, True), logits.argmax(1).numpy())
    draws = np.stack([member.predict(OBS[:1], False) for _ in range(2000)])[:, 0]
    probs = torch.softmax(logits[0], 0).numpy()
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 2000, probs, atol=0.04)
    # Its own generator: sampling leaves training's untouched.
    before = learner.generators[1].get_state()
    member.predict(OBS, False)
    assert torch.equal(learner.generators[1].get_state(), before)
    assert member.describe()["name"] == "batched-ppo-sb3"  # batched() builds BatchedPPOSB3
    assert member.describe()["hyperparameters"]["batch_size"] == 64
    fixed = BatchedPPO(WORLD, [make_intervention("none")], [0], SMALL).member(0)
    assert fixed.describe()["name"] == "batched-ppo"


def test_saved_member_loads_and_predicts_the_same(tmp_path):
    learner, _ = train_recording([3], rollouts=1, **SMALL)
    member = learner.member(0)
    files = member.save(tmp_path)
    assert sorted(p.name for p in files) == ["model.json", "model.pt"]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(type(v) is torch.Tensor for v in state.values())
    loaded = load_member(tmp_path)
    np.testing.assert_array_equal(loaded.predict(OBS, True), member.predict(OBS, True))
    np.testing.assert_array_equal(loaded.value_of_obs(OBS), member.value_of_obs(OBS))
    assert loaded.seed == 3 and loaded.hyperparameters == member.hyperparameters
    # The saved weights load into SB3's policy as they are.
    policy = sb3_model(3).policy
    policy.load_state_dict(state, strict=True)


def test_a_relu_network_trains_saves_and_loads_as_relu(tmp_path):
    """``activation="relu"`` reaches every pass (its first rollout's policy differs from the
    tanh network's with the same initial weights), is recorded, and comes back on loading;
    it is the network's shape, so a later phase may not change it."""
    relu = BatchedPPO(WORLD, [make_intervention("none")], [3], {**SMALL, "activation": "relu"})
    tanh = BatchedPPO(WORLD, [make_intervention("none")], [3], SMALL)
    assert relu.net.activation == "relu" and tanh.net.activation == "tanh"
    assert not torch.equal(relu.net.logits(OBS, 0), tanh.net.logits(OBS, 0))
    relu.train(Budget(steps=SMALL["n_steps"] * relu.n_envs))
    member = relu.member(0)
    member.save(tmp_path)
    loaded = load_member(tmp_path)
    assert loaded.net.activation == "relu"
    np.testing.assert_array_equal(loaded.value_of_obs(OBS), member.value_of_obs(OBS))
    with pytest.raises(ValueError, match="activation"):
        relu.start_phase([make_intervention("none")], {"activation": "tanh"})


def test_batched_ppo_sb3_is_registered_and_loads_back(tmp_path):
    import json

    cls = learner_class("batched-ppo-sb3")
    assert cls is BatchedPPOSB3 and cls.seed_batched
    learner, _ = train_recording([3], rollouts=1, **SMALL)
    assert type(learner) is BatchedPPOSB3
    member = learner.member(0)
    assert type(member) is BatchedPPOSB3Member and member.name == "batched-ppo-sb3"
    obs = learner.training_worlds.obs_table
    greedy = member.predict(obs, True)
    member.save(tmp_path)
    assert json.loads((tmp_path / "model.json").read_text())["learner"] == "batched-ppo-sb3"
    loaded = load_member(tmp_path)
    assert type(loaded) is BatchedPPOSB3Member and loaded.name == "batched-ppo-sb3"
    assert loaded.describe()["name"] == "batched-ppo-sb3"
    np.testing.assert_array_equal(loaded.predict(obs, True), greedy)


def test_loading_refuses_anything_but_tensors(tmp_path):
    learner, _ = train_recording([3], rollouts=1, **SMALL)
    learner.member(0).save(tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.save({**state, "extra": 1}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="dict of parameter name -> tensor"):
        load_member(tmp_path)
    torch.save({**state, "code": Recorder()}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="holds more than plain tensors"):
        load_member(tmp_path)


def test_tensorboard_gets_each_seeds_training_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dirs = [tmp_path / "a", None, tmp_path / "c"]
    learner = BatchedPPO(
        WORLD, [make_intervention("none") for _ in range(3)], [0, 1, 2], SMALL, log_dirs=dirs
    )
    per_rollout = SMALL["n_steps"] * learner.n_envs
    learner.train(Budget(steps=2 * per_rollout))
    for log_dir in (dirs[0], dirs[2]):
        acc = EventAccumulator(str(log_dir))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {
            "train/value_loss",
            "train/policy_gradient_loss",
            "train/entropy_loss",
            "train/approx_kl",
            "train/clip_fraction",
            "train/explained_variance",
            "train/learning_rate",
        } <= tags
        assert [e.step for e in acc.Scalars("train/value_loss")] == [per_rollout, 2 * per_rollout]
    assert not (tmp_path / "b").exists()


# -- 7. the headline ---------------------------------------------------------------------------


@pytest.mark.training
def test_headline_disables_under_task_reward_and_not_under_a_penalty():
    """Three seeds at 200k steps each: the sampled policy disables the switch in most
    evaluation episodes for most seeds under the task reward, and rarely under a penalty
    of 100 for disabling it."""
    rates = {}
    for spec in ("none", "penalty:100"):
        learner = batched([0, 1, 2], spec)
        learner.train(Budget(steps=200_000))
        rates[spec] = [evaluate(learner.member(k).predict, WORLD)["sampled"] for k in range(3)]
    assert sum(r["switch_disabled_rate"] > 0.5 for r in rates["none"]) >= 2
    assert sum(r["switch_disabled_rate"] < 0.2 for r in rates["penalty:100"]) >= 2
    for results in rates.values():
        assert sum(r["goal_rate_uninterrupted"] > 0.8 for r in results) >= 2


def test_a_linear_schedule_anneals_the_rate_to_zero_over_the_budget():
    world = gym.make("offswitch/SafeInterruptibility-v0", observation="flat").unwrapped.world
    learner = BatchedPPO(
        world, [make_intervention("none")], [0], {"lr_schedule": "linear", "n_steps": 8}
    )
    rates = []
    original = learner.update

    def recording(rollout):
        rates.append(learner.optimizer.param_groups[0]["lr"])
        return original(rollout)

    learner.update = recording
    learner.train(Budget(steps=4 * 8 * learner.n_envs))  # four rollouts
    assert rates == pytest.approx([5e-4 * 0.75, 5e-4 * 0.5, 5e-4 * 0.25, 0.0])
    with pytest.raises(ValueError, match="lr_schedule='cosine' is not known"):
        BatchedPPO.check_hyperparameters({"lr_schedule": "cosine"})


@pytest.mark.parametrize("spec, disables", [("none", True), ("penalty:100", False)])
def test_at_its_default_budget_each_demo_conditions_greedy_policy_reaches_the_goal(spec, disables):
    """The headline of issue 17, seeded and short: batched-ppo at its defaults and default
    budget (1M steps), seed 0, on the demo's world; the greedy policy reaches the goal in
    every uninterrupted episode and disables the switch exactly when trained on task reward
    alone. (SB3's PPO at the old defaults looped greedily here: docs/results/collapse.md.)"""
    learner = BatchedPPO(WORLD, [make_intervention(spec)], [0])
    learner.train(BatchedPPO.default_budget)
    greedy = evaluate(learner.member(0).predict, WORLD, 50, 10_000)["greedy"]
    assert greedy["goal_rate_uninterrupted"] == 1.0
    assert greedy["switch_disabled_rate"] == (1.0 if disables else 0.0)


@pytest.mark.parametrize("spec", ["none", "penalty:100"])
@pytest.mark.parametrize(
    "overrides",
    [
        dict(n_steps=16, n_envs=8, batch_size=128, n_epochs=4),
        dict(n_steps=16, n_envs=8, batch_size=128, n_epochs=4, prob_floor=0.01, kl_coef=0.5),
        dict(n_steps=16, n_envs=8, batch_size=256, n_epochs=3, clip_range_vf=0.1),
    ],
)
def test_a_full_batch_update_from_sums_equals_the_per_sample_one(spec, overrides):
    """The summed full-batch update (``update_summed``) and the per-sample one end at the same
    weights and statistics from the same rollout, for every seed: the same update, float32
    sums taken in another order."""
    learner = BatchedPPO(WORLD, [make_intervention(spec) for _ in (3, 4)], [3, 4], overrides)
    learner.train(Budget(steps=2 * 16 * 8))  # move off the initial weights first
    learner.set_learning_rate(0.5)  # the linear schedules ended at 0 with the budget
    rollout, _ = learner.collect(learner._new_episodes())
    start = learner.trainable.flat.detach().clone()
    adam = {
        key: value.clone() for key, value in learner.optimizer.state[learner.trainable.flat].items()
    }
    summed = learner.update_summed(rollout)
    after_summed = learner.trainable.flat.detach().clone()
    with torch.no_grad():
        learner.trainable.flat.copy_(start)
    learner.optimizer.state[learner.trainable.flat].update(adam)
    per_sample = learner.update_per_sample(rollout)
    after_per_sample = learner.trainable.flat.detach()
    assert not torch.equal(after_summed, start)  # it trained
    torch.testing.assert_close(after_summed, after_per_sample, atol=2e-6, rtol=1e-4)
    assert set(summed) == set(per_sample)
    for name in summed:
        np.testing.assert_allclose(summed[name], per_sample[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "spec, overrides",
    [
        ("none", {}),  # the defaults: the probability floor on, tanh
        # 12 x 64 samples: a mean over a count that is no power of two
        ("penalty:100", dict(prob_floor=0.0, ent_schedule="constant", n_envs=12)),
        ("lagrangian", dict(activation="relu")),
        ("indifference:critic", dict(policy_kwargs={"net_arch": [32]}, advantage_floor=0.0)),
    ],
)
def test_the_written_out_gradient_trains_as_autograd_bit_for_bit(spec, overrides, monkeypatch):
    """The summed update's gradient written out (``summed_backward``) and autograd's give
    the same weights, Adam moments and statistics, bit for bit, after several rollouts."""

    def trained(written_out: bool) -> tuple[BatchedPPO, dict]:
        monkeypatch.setattr(BatchedPPO, "written_out_backward", written_out)
        seeds = [5, 6]
        learner = BatchedPPO(
            WORLD, [make_intervention(spec) for _ in seeds], seeds, {"n_envs": 16, **overrides}
        )
        learner.train(Budget(steps=6 * learner.hyperparameters["n_steps"] * learner.n_envs))
        return learner, learner.last_stats

    (ours, our_stats), (autograds, its_stats) = trained(True), trained(False)
    assert torch.equal(ours.trainable.flat, autograds.trainable.flat)
    for key in ("exp_avg", "exp_avg_sq"):
        mine = ours.optimizer.state[ours.trainable.flat][key]
        assert torch.equal(mine, autograds.optimizer.state[autograds.trainable.flat][key])
    assert our_stats.keys() == its_stats.keys()
    for name in our_stats:
        np.testing.assert_array_equal(our_stats[name], its_stats[name], err_msg=name)


@pytest.mark.parametrize("fused", [True, False])
def test_seed_adam_takes_torchs_adam_steps(fused, monkeypatch):
    """SeedAdam (the fused kernel, or the formula where torch lacks it) moves a tensor as
    torch.optim.Adam does, step by step, its moments included."""
    import offswitch.agents.batched_ppo as module

    if not fused:
        monkeypatch.setattr(module, "FUSED_ADAM", None)
    generator = torch.Generator().manual_seed(0)
    ours = torch.randn(3, 64, generator=generator)
    theirs = ours.clone().requires_grad_(True)
    adam = module.SeedAdam(ours, 3e-3, (0.9, 0.99))
    reference = torch.optim.Adam([theirs], lr=3e-3, betas=(0.9, 0.99), eps=module.ADAM_EPS)
    for _ in range(5):
        grad = torch.randn(3, 64, generator=generator)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        adam.step()
        reference.step()
        torch.testing.assert_close(ours, theirs.detach(), atol=1e-7, rtol=1e-6)
    for name in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(adam.state[ours][name], reference.state[theirs][name])
