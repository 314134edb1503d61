"""Training in phases (compliance tuning, then task training) and the KL penalty toward the
policy at the start of a phase: the learner's continuation, by hand where it can be."""

from __future__ import annotations

import math

import pytest
import torch

from offswitch.agents.batched_ppo import BatchedPPO, ppo_losses, reference_kl
from offswitch.agents.interventions import make_intervention
from offswitch.agents.training import Budget, TrainingHooks
from offswitch.experiments.config import TrainConfig

INSTRUCTED = TrainConfig(env_id="offswitch/InstructedShutdown-v0").world()
SMALL = dict(n_steps=16, batch_size=64, n_epochs=2)
"""16 steps x 16 worlds = 256 samples per rollout."""


class Recorder(TrainingHooks):
    def __init__(self) -> None:
        self.rollouts: list[tuple[int, list]] = []

    def rollout_end(self, episodes, timesteps) -> None:
        self.rollouts.append((timesteps, list(episodes)))


def learner(seeds, spec: str = "compliance:100", **overrides) -> BatchedPPO:
    return BatchedPPO(
        INSTRUCTED, [make_intervention(spec) for _ in seeds], seeds, {**SMALL, **overrides}
    )


# -- the KL term, by hand -------------------------------------------------------------------


def test_reference_kl_of_two_actions_by_hand():
    reference = torch.log(torch.tensor([[0.5, 0.5]]))
    logits = torch.log(torch.tensor([[0.8, 0.2]])).requires_grad_(True)
    log_p = logits - logits.logsumexp(-1, keepdim=True)
    kl = reference_kl(reference, log_p)
    # KL(pi_ref || pi) = 0.5 ln(0.5 / 0.8) + 0.5 ln(0.5 / 0.2); the other direction,
    # 0.8 ln(0.8 / 0.5) + 0.2 ln(0.2 / 0.5), is another number.
    by_hand = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert kl.item() == pytest.approx(by_hand, rel=1e-6)
    assert by_hand != pytest.approx(0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5))
    # Its gradient in the logits is pi - pi_ref: toward the reference, in every action.
    kl.sum().backward()
    assert logits.grad.tolist()[0] == pytest.approx([0.8 - 0.5, 0.2 - 0.5], rel=1e-5)
    assert reference_kl(reference, reference).item() == 0.0


def test_the_kl_term_adds_its_weighted_minibatch_mean_to_the_loss():
    args = [torch.tensor([[-1.0, -0.5]]), torch.tensor([[1.0, 1.2]]), torch.tensor([[0.5, 0.5]])]
    args += [torch.tensor([[-1.2, -0.5]]), torch.tensor([[1.0, -2.0]])]
    args += [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]), 0.2, None, 0.01, 0.5, True]
    plain = ppo_losses(*args)
    kl = torch.tensor([[0.3, 0.1]])
    with_kl = ppo_losses(*args, kl, 2.0)
    assert plain.reference_kl is None
    assert with_kl.reference_kl.item() == pytest.approx(0.2)
    assert with_kl.total.item() == pytest.approx(plain.total.item() + 2.0 * 0.2)
    assert with_kl.policy.item() == plain.policy.item()


# -- continuing under another intervention --------------------------------------------------


def test_a_new_phase_keeps_the_agent_and_pays_only_its_own_terms():
    agent = learner([0, 1], n_steps=64)  # 1024 samples per rollout
    hooks = [Recorder(), Recorder()]
    agent.train(Budget(steps=2048), hooks)
    weights = {k: agent.net.state_dict(k) for k in range(2)}
    adam = {k: v.clone() for k, v in agent.optimizer.state[agent.trainable.flat].items()}
    agent.start_phase([make_intervention("none") for _ in range(2)], {**SMALL, "n_steps": 64})
    for k in range(2):  # nothing moved between phases
        for name, tensor in agent.net.state_dict(k).items():
            assert torch.equal(tensor, weights[k][name]), name
    state = agent.optimizer.state[agent.trainable.flat]
    assert all(torch.equal(state[k], v) for k, v in adam.items())  # Adam's moments kept
    agent.train(Budget(steps=2048), hooks)
    assert agent.steps == 4096
    steps = [t for t, _ in hooks[0].rollouts]
    assert steps == [1024, 2048, 3072, 4096]  # the step count runs on
    first = [e for t, episodes in hooks[0].rollouts if t <= 2048 for e in episodes]
    second = [e for t, episodes in hooks[0].rollouts if t > 2048 for e in episodes]
    assert first and second
    assert all("compliance_penalty" in e.reward_terms for e in first)
    assert not any("compliance_penalty" in e.reward_terms for e in second)
    # The second phase starts new episodes: none that ends in its first rollout of 64 steps
    # per world is longer than that.
    assert hooks[0].rollouts[2][1] and all(e.length <= 64 for e in hooks[0].rollouts[2][1])


def test_a_new_phase_refuses_to_change_the_network_and_sets_the_learning_rate():
    agent = learner([0])
    with pytest.raises(ValueError, match="sets n_envs=8, the first phase 16: a phase keeps"):
        agent.start_phase([make_intervention("none")], {**SMALL, "n_envs": 8})
    with pytest.raises(ValueError, match="one intervention object per seed"):
        agent.start_phase([make_intervention("none")] * 2, SMALL)
    agent.start_phase([make_intervention("none")], {**SMALL, "learning_rate": 1e-3})
    assert agent.optimizer.param_groups[0]["lr"] == 1e-3
    assert agent.hyperparameters["learning_rate"] == 1e-3


def test_the_kl_penalty_holds_the_policy_near_the_start_of_its_phase():
    def drift(kl_coef: float) -> float:
        agent = learner([3], n_epochs=4)
        agent.train(Budget(steps=1024), [Recorder()])
        agent.start_phase([make_intervention("none")], {**SMALL, "n_epochs": 4, "kl_coef": kl_coef})
        reference = agent.policy_table()[0]
        if kl_coef:
            assert torch.equal(agent.reference, reference)  # frozen now, at the phase's start
        else:
            assert agent.reference is None
        agent.train(Budget(steps=2048), [Recorder()])
        if kl_coef:
            assert agent.last_stats["train/reference_kl"][0] >= 0
        return reference_kl(reference, agent.policy_table()[0]).mean().item()

    assert drift(10.0) < 0.5 * drift(0.0)
