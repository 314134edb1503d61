"""PPO with K seeds trained as one batched network, in one process.

The algorithm is Stable-Baselines3's PPO (``stable_baselines3.PPO`` with an ``MlpPolicy``),
with a convergence fix (below), at this project's defaults
(:class:`~offswitch.agents.sb3.PPOLearner`): separate actor and critic MLPs with tanh,
SB3's orthogonal initialisation, a categorical policy, rollouts of
``n_steps`` on ``n_envs`` worlds with the critic's bootstrap added to the reward of a
truncated step, GAE, then ``n_epochs`` passes of shuffled minibatches with the clipped
surrogate, value and entropy losses, gradients clipped to ``max_grad_norm`` and Adam
(``eps=1e-5``). ``tests/test_batched_ppo.py`` checks each piece against SB3's code.

What differs is how the K seeds are computed. Each seed has its own weights, Adam state,
torch generator and training worlds, but the weights of all K sit in tensors with a leading
seed dimension (``[K, in, out]``) and every layer is one ``torch.baddbmm`` over the seeds,
as PureJaxRL does with ``vmap``. Each seed's loss is its own mean over its own minibatch and
the gradient of their sum is each seed's own gradient, clipped by its own norm; Adam acts
element by element. So a seed trained among K follows the same trajectory as trained alone
(``tests/test_batched_ppo.py``), and K seeds cost about one seed's Python overhead.

The worlds are tabular: every observation is a row of the world's observation table. Two
consequences, exact rewrites rather than approximations:

* A network's output depends only on the observation, so the actor and critic are computed
  once per *distinct observation* (tens of rows) rather than once per sample (hundreds per
  minibatch) whenever there are fewer distinct observations than samples, and each sample's
  log-probability, entropy and value is gathered from that table; the gradient of the gather
  adds up the samples of each observation, as the per-sample graph would.
* An input feature that is 0 in every observation has a gradient of exactly 0 on its
  first-layer weights, which Adam then never moves. Training uses only the features that
  are set somewhere in the table; the full weights (for :meth:`BatchedPPOMember.predict`,
  the critic bound to the intervention, and saving) keep the others at their initial values.

Rollouts sample from a table of the policy too: the policy does not change within a rollout,
so its probabilities and values for every distinct observation are computed once per rollout,
and each seed's actions are drawn by inverse-CDF sampling with uniforms from its own
generator. SB3 draws the same distribution through ``torch.multinomial`` on torch's global
generator, and its minibatch permutations with ``np.random.permutation``: the same seed
therefore gives a different run here than in SB3, from equally distributed random numbers.
Given SB3's random streams, this learner follows SB3's run (``tests/test_batched_ppo.py``).

When one minibatch holds the whole rollout (``batch_size >= n_steps * n_envs``, the
defaults), an epoch is computed from sums over the samples of each distinct observation and
action, taken once per rollout (:meth:`BatchedPPO.update_summed`): the same update in exact
arithmetic, about twice as fast. SB3 shuffles that one minibatch each epoch, which changes
only the order of a sum, so no permutation is drawn, and the float32 sums are taken in
another order than the per-sample path's. Runs are therefore not the bits they were before
this path existed: each seed's generator now draws only the initial weights and the
actions, and last bits differ after the first update. ``docs/performance.md`` shows what
that did to the demo's figures. That update's gradient is written out
(:mod:`~offswitch.agents.summed_backward`), autograd's formulas in autograd's order, so it
is autograd's gradient bit for bit without the cost of recording a graph each epoch.

One addition to SB3's PPO, off by default: ``kl_coef``, a penalty toward a reference policy,
the policy as it was when the current phase of training started (at construction, or at
:meth:`BatchedPPO.start_phase`). The loss gets ``kl_coef * KL(pi_ref || pi)`` per sample,
averaged over the minibatch like the other terms, the KL computed exactly over the actions
of the sample's observation (the policies are categorical): :func:`reference_kl`. This is
how RLHF holds a tuned model near its starting point against drift (Ziegler et al. 2019;
Ouyang et al. 2022), used here against the erosion of compliance by later task training.
The direction: RLHF puts ``KL(pi || pi_ref)``, estimated on samples of ``pi``, into the
reward; here the KL is a loss term, and ``KL(pi_ref || pi)`` is the one whose gradient in
``pi`` is the cross-entropy to the reference, ``-sum_a pi_ref(a) grad log pi(a)``: it pulls
the policy back toward every action the reference takes, in proportion to how often it
takes it (mass-covering), so a reference that complies in some state keeps its complying
action from being driven to zero there, while ``KL(pi || pi_ref)`` lets ``pi`` drop actions
the reference took as long as it takes none the reference avoids. The penalty applies on
the states the current policy visits, not on states it stops visiting.

``device`` (default ``"cpu"``; ``"cuda"`` or ``"cuda:N"``) is where the network's weights, the
observation table, Adam's state and the minibatch tensors live and the rollouts' policy table
and the updates are computed. Every random draw stays on the CPU whatever the device: each
seed's ``torch.Generator`` (initial weights, the uniforms of action sampling, the minibatch
permutations) and the members' evaluation generators, so a seed's random numbers never depend
on the device; the worlds and GAE are numpy, fed through ``.cpu()``. With ``"cpu"`` nothing
moves and a run is the same bit for bit as before the option existed. ``model.pt`` holds CPU
tensors whatever the device, so a model trained on a GPU loads on a machine without one.
``benchmarks/batched_device.py`` times the two.

The convergence fix, on by default (:data:`CONVERGENCE_FIX`); ``batched-ppo-sb3`` is the same
learner without it, SB3's PPO exactly (:data:`SB3_DEFAULTS`). SB3's PPO at this project's old
defaults left two failures on SafeInterruptibility-v0 that had nothing to do with the switch
(``docs/results/collapse.md`` shows the evidence): the penalised agent's greedy policy bumped a
wall at the start, its preference for the way out (one step's reward) drowned in the
interruption draw's noise (returns of one path differ by about 140) and in the entropy bonus;
and with longer training task-reward agents fell into a loop, the policy saturated on bumping a
wall (probability 1.00), where the way out is never sampled again and so can never be learned
back. The parts, and why; ``collapse.md`` takes them away in turn and shows which the
measurements need (the batches for the start, the floor for the collapse; the advantage floor
and the annealed entropy bonus changed nothing measurable at 1M steps):

* ``n_envs = 64``, ``n_steps = 64``, ``batch_size = 4096``, ``n_epochs = 10`` (also
  :class:`~offswitch.agents.sb3.PPOLearner`'s defaults, so the two learners stay comparable):
  each update averages over 4,096 samples, full batch, so that a one-step preference stands out
  of the draw's noise. Samples are cheap here: the network runs once per distinct observation.
* ``advantage_floor = 1.0``: normalised advantages are divided by ``max(std, 1)`` rather than
  by their std. When a policy has converged, every sample's return is nearly the same and the
  std is tiny; dividing by it blows the critic's small errors up to unit-scale advantages,
  which then push a settled policy around. A floor in reward units keeps them small.
* ``lr_schedule = "linear"`` and ``ent_schedule = "linear"``: the rate and the entropy bonus
  anneal to 0 over the budget, so that a small but real preference (a wall bump costs one step)
  wins over the bonus by the end and the greedy policy follows it.
* ``prob_floor = 1e-3``: a hinge ``sum_a max(0, log(prob_floor) - log pi(a))`` on the sampled
  states, added to the loss, holds every action's probability at or above about 1e-3. Above
  the floor it does nothing; below it, its gradient on the logit does not vanish as the
  entropy bonus's does (``pi(a) log pi(a)``), so no action is ever saturated out: a policy that
  falls into a loop still samples the way out, about once in a thousand visits, and PPO's
  ratio lifts it back. The greedy policy is unaffected; the sampled one takes a floor action
  at most a few times in a thousand steps.

One more knob, off by default: ``adam_beta2`` (0.9 gives the equal betas Dohare et al. 2023
propose against the loss of plasticity they trace to Adam; it did not stop the collapse here).

Not offered: ``target_kl`` (its early stop would end the epochs of each seed at a different
minibatch) and schedules other than the linear ones of ``lr_schedule`` and ``ent_schedule``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from offswitch.agents.batched_ppo_settings import (
    DEFAULTS,
    DESCRIPTION,
    NAME,
    SB3_NAME,
    BatchedPPODeclared,
    BatchedPPOSB3Declared,
    parse_net_arch,
)
from offswitch.agents.hyperparameters import (
    HyperparameterError,
)
from offswitch.agents.interventions.base import Intervention
from offswitch.agents.summed_backward import (
    ACTIVATION_BACKWARD,
    loss_weights,
    mlp_backward,
    mlp_forward,
    policy_head_gradient,
    value_head_gradient,
)
from offswitch.agents.training import (
    Budget,
    Learner,
    SeedBatchedLearner,
    TrainingHooks,
    TrainingWorlds,
    check_phase_hyperparameters,
    write_scalars,
)
from offswitch.envs.engine import TabularWorld
from offswitch.envs.gridworld import observation_table

MODEL_FILE = "model.pt"
CONFIG_FILE = "model.json"
FORMAT = 1
"""Version of the ``model.pt`` / ``model.json`` pair."""

INIT_GAINS = {"hidden": math.sqrt(2), "action": 0.01, "value": 1.0}
"""SB3's orthogonal gains: hidden layers, the action head and the value head."""
ADAM_EPS = 1e-5
"""SB3's Adam epsilon for actor-critic policies."""

TB_SCALARS = (
    "train/entropy_loss",
    "train/policy_gradient_loss",
    "train/value_loss",
    "train/approx_kl",
    "train/clip_fraction",
    "train/loss",
    "train/explained_variance",
    "train/learning_rate",
    "train/clip_range",
)
"""The training scalars written per seed, named as SB3's PPO names them."""


# -- the batched network -------------------------------------------------------------------


def sb3_layer_names(pi: Sequence[int], vf: Sequence[int]) -> list[tuple[str, str, int]]:
    """``(SB3 module name, our layer name, layer index)`` of every linear layer, in the order
    SB3's ``ActorCriticPolicy`` builds them (which is the order its init draws numbers)."""
    names = [(f"mlp_extractor.policy_net.{2 * i}", "pi", i) for i in range(len(pi))]
    names += [(f"mlp_extractor.value_net.{2 * i}", "vf", i) for i in range(len(vf))]
    names += [("action_net", "pi", len(pi)), ("value_net", "vf", len(vf))]
    return names


def layer_shapes(
    obs_dim: int, n_actions: int, pi: Sequence[int], vf: Sequence[int]
) -> dict[tuple[str, int], tuple[int, int]]:
    """``(in, out)`` of layer ``i`` of ``net`` (``"pi"``, ``"vf"``), keyed ``(net, i)``."""
    shapes = {}
    for net, hidden, head in (("pi", pi, n_actions), ("vf", vf, 1)):
        sizes = (obs_dim, *hidden, head)
        for i in range(len(sizes) - 1):
            shapes[(net, i)] = (sizes[i], sizes[i + 1])
    return shapes


class BatchedActorCritic:
    """K actor-critic MLPs as tensors with a leading seed dimension.

    ``weights[(net, i)]`` is ``(W [K, in, out], b [K, 1, out])`` of layer ``i`` of ``net``
    (``"pi"`` or ``"vf"``); the last layer of ``pi`` is the action head, that of ``vf`` the
    value head. These are the full weights (every input feature), used to predict, to give
    the critic to an intervention and to save.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        pi: Sequence[int],
        vf: Sequence[int],
        weights: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]],
        activation: str = "tanh",
    ) -> None:
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.pi, self.vf = tuple(pi), tuple(vf)
        self.weights = weights
        self.k = next(iter(weights.values()))[0].shape[0]
        if activation not in ACTIVATION_FUNCTIONS:
            raise ValueError(
                f"activation={activation!r}: give one of {', '.join(ACTIVATION_FUNCTIONS)}"
            )
        self.activation = activation
        """The function between hidden layers, by name (:data:`ACTIVATION_FUNCTIONS`)."""
        self.act = ACTIVATION_FUNCTIONS[activation]

    @property
    def device(self) -> torch.device:
        """Where the weights are (all on one device)."""
        return next(iter(self.weights.values()))[0].device

    def to(self, device: torch.device) -> BatchedActorCritic:
        """Move every weight to ``device`` (in place: this network, not a copy); itself."""
        self.weights = {key: (w.to(device), b.to(device)) for key, (w, b) in self.weights.items()}
        return self

    def shapes(self) -> dict[tuple[str, int], tuple[int, int]]:
        """``(in, out)`` of every layer."""
        return layer_shapes(self.obs_dim, self.n_actions, self.pi, self.vf)

    @classmethod
    def initial(
        cls,
        obs_dim: int,
        n_actions: int,
        pi: Sequence[int],
        vf: Sequence[int],
        generators: Sequence[torch.Generator],
        activation: str = "tanh",
    ) -> BatchedActorCritic:
        """SB3's initialisation, one seed per generator: each ``nn.Linear``'s default init
        then the orthogonal one, drawn in SB3's order, so that a generator seeded ``s`` gives
        the weights of ``PPO(..., seed=s)``'s policy."""
        per_seed = [cls._initial_one(obs_dim, n_actions, pi, vf, g) for g in generators]
        weights = {
            key: (
                torch.stack([w[key][0] for w in per_seed]),
                torch.stack([w[key][1] for w in per_seed]),
            )
            for key in per_seed[0]
        }
        return cls(obs_dim, n_actions, pi, vf, weights, activation)

    @staticmethod
    def _initial_one(
        obs_dim: int, n_actions: int, pi: Sequence[int], vf: Sequence[int], g: torch.Generator
    ) -> dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]]:
        shapes = layer_shapes(obs_dim, n_actions, pi, vf)
        order = sb3_layer_names(pi, vf)
        linear: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        for _, net, i in order:  # nn.Linear.reset_parameters, in construction order
            fan_in, fan_out = shapes[(net, i)]
            w = torch.empty(fan_out, fan_in)
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
            b = torch.empty(fan_out)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            torch.nn.init.uniform_(b, -bound, bound, generator=g)
            linear[(net, i)] = (w, b)
        # The orthogonal init (ActorCriticPolicy._build): mlp_extractor, then the heads.
        out = {}
        for _, net, i in order:
            w, _ = linear[(net, i)]
            head = i == (len(pi) if net == "pi" else len(vf))
            gain = INIT_GAINS[("action" if net == "pi" else "value") if head else "hidden"]
            torch.nn.init.orthogonal_(w, gain=gain, generator=g)
            out[(net, i)] = (w.T.contiguous(), torch.zeros(1, w.shape[0]))
        return out

    # -- forward ---------------------------------------------------------------------------
    def _layers(self, net: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.pi if net == "pi" else self.vf) + 1
        return [self.weights[(net, i)] for i in range(count)]

    def _flat(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(np.array(obs, dtype=np.float32).reshape(len(obs), -1))
        x = x.to(self.device)
        if x.shape[1] != self.obs_dim:
            raise ValueError(
                f"observations of {x.shape[1]} features: this network takes {self.obs_dim}"
            )
        return x

    def logits(self, obs: np.ndarray, k: int) -> torch.Tensor:
        """Seed ``k``'s action logits of an observation batch (no gradient), on the
        network's device."""
        with torch.no_grad():
            return mlp(self._flat(obs), self._layers("pi"), k, self.act)

    def values(self, obs: np.ndarray, k: int) -> np.ndarray:
        """Seed ``k``'s critic values of an observation batch (no gradient)."""
        with torch.no_grad():
            return mlp(self._flat(obs), self._layers("vf"), k, self.act).reshape(-1).cpu().numpy()

    # -- SB3's parameter names -------------------------------------------------------------
    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Seed ``k``'s weights under the names and layouts of SB3's ``ActorCriticPolicy``
        state dict (``[out, in]`` weights): a plain dict of CPU tensors, whatever the
        network's device."""
        state = {}
        for name, net, i in sb3_layer_names(self.pi, self.vf):
            w, b = self.weights[(net, i)]
            state[f"{name}.weight"] = w[k].T.cpu().clone().contiguous()
            state[f"{name}.bias"] = b[k, 0].cpu().clone()
        return state

    @classmethod
    def from_state_dicts(
        cls,
        states: Sequence[dict[str, torch.Tensor]],
        obs_dim: int,
        n_actions: int,
        pi: Sequence[int],
        vf: Sequence[int],
        activation: str = "tanh",
    ) -> BatchedActorCritic:
        """K networks from K state dicts named as :meth:`state_dict` writes them (SB3's
        policy state dicts also work: keys beyond the MLP's are ignored)."""
        shapes = layer_shapes(obs_dim, n_actions, pi, vf)
        weights = {}
        for name, net, i in sb3_layer_names(pi, vf):
            fan_in, fan_out = shapes[(net, i)]
            ws, bs = [], []
            for state in states:
                w, b = state.get(f"{name}.weight"), state.get(f"{name}.bias")
                if not isinstance(w, torch.Tensor) or tuple(w.shape) != (fan_out, fan_in):
                    raise ValueError(
                        f"{name}.weight: expected a tensor of shape ({fan_out}, {fan_in})"
                    )
                if not isinstance(b, torch.Tensor) or tuple(b.shape) != (fan_out,):
                    raise ValueError(f"{name}.bias: expected a tensor of shape ({fan_out},)")
                ws.append(w.detach().float().T)
                bs.append(b.detach().float().reshape(1, fan_out))
            weights[(net, i)] = (torch.stack(ws).contiguous(), torch.stack(bs).contiguous())
        return cls(obs_dim, n_actions, pi, vf, weights, activation)


ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}
"""The hyperparameter ``activation``'s functions, by name."""


def mlp(
    x: torch.Tensor,
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    k: int,
    act: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> torch.Tensor:
    """Seed ``k``'s MLP (``act`` between layers, none after the last) on ``x [n, in]``."""
    for j, (w, b) in enumerate(layers):
        x = torch.addmm(b[k], x, w[k])
        if j < len(layers) - 1:
            x = act(x)
    return x


def batched_mlp(
    x: torch.Tensor,
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    act: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> torch.Tensor:
    """Every seed's MLP at once: ``x [K, n, in]`` (may be an expanded view) to
    ``[K, n, out]``, one ``baddbmm`` per layer (:func:`~offswitch.agents.summed_backward.
    mlp_forward`, whose hidden layers are not kept here)."""
    return mlp_forward(x, layers, act)[0]


# -- GAE and the PPO losses, as SB3 computes them ----------------------------------------


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(advantages, returns)`` of a rollout, arrays ``[n_steps, ...]`` of float32.

    ``dones[t]``: the episode ended at step ``t`` (SB3's ``episode_starts[t + 1]``, and its
    ``dones`` for the last step). The same float32 operations in the same order as SB3's
    ``RolloutBuffer.compute_returns_and_advantage``, for any trailing shape (here
    ``[K, n_envs]``).
    """
    rewards = rewards.astype(np.float32, copy=False)
    values = values.astype(np.float32, copy=False)
    not_done = 1.0 - dones.astype(np.float32)
    advantages = np.zeros_like(rewards)
    last_gae_lam: Any = 0
    n = len(rewards)
    for step in reversed(range(n)):
        next_values = last_values if step == n - 1 else values[step + 1]
        next_non_terminal = not_done[step]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gamma * gae_lambda * next_non_terminal * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages, advantages + values


class Losses(NamedTuple):
    """One minibatch's losses and statistics, each ``[K]``: one per seed."""

    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    total: torch.Tensor
    approx_kl: torch.Tensor
    clip_fraction: torch.Tensor
    reference_kl: torch.Tensor | None = None
    """The mean ``KL(pi_ref || pi)`` over the minibatch, when ``kl_coef`` is used."""


def reference_kl(reference_log_p: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``KL(pi_ref || pi) = sum_a pi_ref(a) (log pi_ref(a) - log pi(a))`` of categorical
    policies given as log-probabilities over the last dimension (module docstring)."""
    return (reference_log_p.exp() * (reference_log_p - log_p)).sum(-1)


def ppo_losses(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor,
    clip_range: float,
    clip_range_vf: float | None,
    ent_coef: float,
    vf_coef: float,
    normalize_advantage: bool,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    advantage_floor: float = 0.0,
    floor_hinge: torch.Tensor | None = None,
) -> Losses:
    """SB3's PPO losses of a minibatch, per seed: every argument is ``[K, batch]``.

    The advantage is normalised within each seed's minibatch (unbiased std, ``+ 1e-8``),
    unless the minibatch has one sample; the clipped surrogate, the (optionally clipped)
    squared value error and minus the entropy are each averaged over the minibatch. With
    ``kl`` (each sample's ``KL(pi_ref || pi)``, :func:`reference_kl`), ``kl_coef`` times its
    minibatch mean is added to the total.
    """
    if normalize_advantage and advantages.shape[1] > 1:
        mean = advantages.mean(dim=1, keepdim=True)
        std = advantages.std(dim=1, keepdim=True)
        if advantage_floor > 0:
            std = torch.clamp(std, min=advantage_floor)
        advantages = (advantages - mean) / (std + 1e-8)
    ratio = torch.exp(log_prob - old_log_prob)
    surrogate = torch.min(
        advantages * ratio, advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    )
    policy_loss = -surrogate.mean(dim=1)
    if clip_range_vf is not None:
        values = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    value_loss = ((returns - values) ** 2).mean(dim=1)
    entropy_loss = -entropy.mean(dim=1)
    total = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
    if floor_hinge is not None:
        total = total + floor_hinge.mean(dim=1)
    mean_kl = None
    if kl is not None:
        mean_kl = kl.mean(dim=1)
        total = total + kl_coef * mean_kl
    with torch.no_grad():
        log_ratio = log_prob - old_log_prob
        approx_kl = ((torch.exp(log_ratio) - 1) - log_ratio).mean(dim=1)
        clip_fraction = ((ratio - 1).abs() > clip_range).float().mean(dim=1)
    return Losses(policy_loss, value_loss, entropy_loss, total, approx_kl, clip_fraction, mean_kl)


class CategoricalParts(NamedTuple):
    """A categorical policy's log-probabilities and entropy from its logits, with the
    tensors computed on the way (for :mod:`~offswitch.agents.summed_backward`)."""

    lse: torch.Tensor
    log_p: torch.Tensor
    clamped: torch.Tensor
    softmax: torch.Tensor
    entropy: torch.Tensor


def categorical_parts(logits: torch.Tensor) -> CategoricalParts:
    """:func:`categorical`, keeping the tensors computed on the way."""
    lse = logits.logsumexp(dim=-1, keepdim=True)
    log_p = logits - lse
    clamped = torch.clamp(log_p, min=torch.finfo(log_p.dtype).min)
    softmax = torch.softmax(logits, dim=-1)
    return CategoricalParts(lse, log_p, clamped, softmax, -(clamped * softmax).sum(-1))


def categorical(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log-probabilities, entropy)`` of categorical policies with these logits, as
    ``torch.distributions.Categorical`` computes them."""
    parts = categorical_parts(logits)
    return parts.log_p, parts.entropy


# -- the device ------------------------------------------------------------------------


def torch_device(name: str) -> torch.device:
    """The torch device ``device=name`` names (its spelling checked by :data:`RANGES`), or a
    one-line :class:`~offswitch.agents.hyperparameters.HyperparameterError` where this
    machine shows no such CUDA device."""
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise HyperparameterError(
            f"{NAME} hyperparameter device={name!r}: no CUDA device is visible to torch on this "
            f"machine (torch {torch.__version__}, torch.cuda.is_available() is False): use "
            "device='cpu'"
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise HyperparameterError(
            f"{NAME} hyperparameter device={name!r}: torch sees {count} CUDA device(s) here, "
            f"cuda:0 to cuda:{count - 1}: give one of those, or device='cpu'"
        )
    return device


# -- the learner ---------------------------------------------------------------------------


class Rollout(NamedTuple):
    """One rollout of every seed, as arrays ``[n_steps, K, n_envs]`` (``last_*``:
    ``[K, n_envs]``)."""

    rows: np.ndarray
    """The distinct-observation row each sample was observed in."""
    actions: np.ndarray
    rewards: np.ndarray
    """float32, truncated steps' bootstrap included."""
    dones: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    states: np.ndarray
    """The world state each sample was observed in."""
    truncated: np.ndarray
    """The step was truncated (never together with terminated)."""
    final_states: np.ndarray
    """The state each step ended in, before any reset."""
    policy_log_p: np.ndarray | None = None
    """The rollout's policy table: log-probabilities ``[K, U, A]`` of every distinct
    observation (every sample's ``log_probs`` is read from it)."""
    policy_values: np.ndarray | None = None
    """The rollout's critic table ``[K, U]`` (every sample's ``values`` is read from it)."""


class _Trainable:
    """The weights training changes, in one tensor ``[K, P]`` (one Adam, one norm per
    seed): every layer, with the first layers restricted to the input features used.

    Autograd's leaves are the layers, views of ``flat``: each gradient lands in its layer's
    own ``.grad``, and :meth:`gather_gradients` copies them into ``flat.grad``. (A ``flat``
    leaf split into layers would cost a concatenation of every gradient in each backward
    pass.) ``P`` is padded to a whole number of vector lanes, so that no seed's weights fall
    in the scalar tail of an element-wise kernel: a seed gets the same bits among K as alone.
    """

    PAD = 64

    def __init__(self, net: BatchedActorCritic, active: np.ndarray) -> None:
        self.net = net
        self.active = torch.as_tensor(active, dtype=torch.long, device=net.device)
        self.slots: list[tuple[tuple[str, int], tuple[int, int]]] = []
        self.sizes: list[int] = []
        for key, (fan_in, fan_out) in net.shapes().items():
            if key[1] == 0:
                fan_in = len(active)
            self.slots.append((key, (fan_in, fan_out)))
            self.sizes += [fan_in * fan_out, fan_out]
        used = sum(self.sizes)
        self.sizes.append(-used % self.PAD)
        self.flat = torch.zeros(net.k, used + self.sizes[-1], device=net.device)
        self.flat.grad = torch.zeros_like(self.flat)
        self._layers = self._views(self.flat)
        self._grads = self._views(self.flat.grad)
        self.pull()
        for net_layers in self._layers.values():
            for w, b in net_layers:
                w.requires_grad_(True)
                b.requires_grad_(True)

    def _views(self, tensor: torch.Tensor) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
        k = tensor.shape[0]
        pieces = tensor.split(self.sizes, dim=1)
        out: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"pi": [], "vf": []}
        for j, ((net, _), (fan_in, fan_out)) in enumerate(self.slots):
            w = pieces[2 * j].view(k, fan_in, fan_out)
            out[net].append((w, pieces[2 * j + 1].view(k, 1, fan_out)))
        return out

    def layers(self) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``{"pi": [(W [K, in, out], b [K, 1, out]), ...], "vf": [...]}``, views of
        ``flat`` and autograd's leaves."""
        return self._layers

    def gather_gradients(self, max_norm: float) -> None:
        """Each layer's gradient into ``flat.grad`` (each layer's cleared for the next pass),
        then each seed's clipped to a norm of at most ``max_norm``, as SB3's
        ``clip_grad_norm_`` does for one seed's parameters."""
        with torch.no_grad():
            for net in ("pi", "vf"):
                for leaves, grads in zip(self._layers[net], self._grads[net]):
                    for leaf, grad in zip(leaves, grads):
                        if leaf.grad is None:  # a layer the loss did not reach
                            grad.zero_()
                        else:
                            grad.copy_(leaf.grad)
                            leaf.grad = None
        self._clip(max_norm)

    def set_gradients(
        self, grads: Sequence[tuple[torch.Tensor, torch.Tensor]], max_norm: float
    ) -> None:
        """:meth:`gather_gradients` from gradients computed without autograd: ``grads`` are
        every layer's ``(g_W, g_b)``, the actor's then the critic's."""
        with torch.no_grad():
            for (g_weight, g_bias), (weight, bias) in zip(
                grads, self._grads["pi"] + self._grads["vf"], strict=True
            ):
                weight.copy_(g_weight)
                bias.copy_(g_bias)
        self._clip(max_norm)

    def _clip(self, max_norm: float) -> None:
        with torch.no_grad():
            flat_grad = self.flat.grad
            norm = flat_grad.norm(dim=1, keepdim=True)
            flat_grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    def pull(self) -> None:
        """``flat`` from the network's full weights."""
        with torch.no_grad():
            for net in ("pi", "vf"):
                for i, (w, b) in enumerate(self._layers[net]):
                    full_w, full_b = self.net.weights[(net, i)]
                    w.copy_(full_w[:, self.active] if i == 0 else full_w)
                    b.copy_(full_b)

    def push(self) -> None:
        """The network's full weights from ``flat`` (unused features keep theirs)."""
        with torch.no_grad():
            for net in ("pi", "vf"):
                for i, (w, b) in enumerate(self._layers[net]):
                    full_w, full_b = self.net.weights[(net, i)]
                    if i == 0:
                        full_w[:, self.active] = w
                    else:
                        full_w.copy_(w)
                    full_b.copy_(b)


FUSED_ADAM = getattr(torch, "_fused_adam_", None)
"""torch's fused Adam kernel (one pass over every seed's weights), where this torch has it."""


class SeedAdam:
    """Adam on one tensor holding every seed's weights, element by element, so each seed
    gets its own update: the kernel of ``torch.optim.Adam(fused=True)`` (SB3's ``eps``), or
    where a torch lacks it, the single-tensor formula of ``torch.optim.Adam``. Not
    ``torch.optim`` itself: the first optimiser built in a process imports
    ``torch._dynamo``, over a second of every worker's start-up, and each ``step`` goes
    through its wrappers. ``param_groups`` and ``state`` read as ``torch.optim``'s do."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float]) -> None:
        self.param = param
        self.param_groups = [{"lr": lr, "betas": betas, "eps": ADAM_EPS}]
        self.state = {
            param: {
                "step": torch.zeros(()),
                "exp_avg": torch.zeros_like(param),
                "exp_avg_sq": torch.zeros_like(param),
            }
        }

    def step(self) -> None:
        """One update of ``param`` from ``param.grad``."""
        group, state = self.param_groups[0], self.state[self.param]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = float(state["step"])
        grad, exp_avg, exp_avg_sq = self.param.grad, state["exp_avg"], state["exp_avg_sq"]
        if FUSED_ADAM is not None:  # the kernel torch.optim.Adam(fused=True) calls
            FUSED_ADAM(
                [self.param],
                [grad],
                [exp_avg],
                [exp_avg_sq],
                [],
                [state["step"]],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=0.0,
                eps=group["eps"],
                amsgrad=False,
                maximize=False,
            )
            return
        with torch.no_grad():
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
            self.param.addcdiv_(exp_avg, denom, value=-group["lr"] / (1 - beta1**step))


class BatchedPPO(BatchedPPODeclared, SeedBatchedLearner):
    """K independent PPO agents (SB3's algorithm and this project's defaults) trained as one
    batched network (module docstring); its declarations are :class:`BatchedPPODeclared`'s."""

    member_class: ClassVar[type[BatchedPPOMember]]
    """The class of :meth:`member`'s seeds (set below, once it exists)."""

    def __init__(
        self,
        world: TabularWorld,
        interventions: Sequence[Intervention],
        seeds: Sequence[int],
        hyperparameters: dict[str, Any] | None = None,
        observation: str = "flat",
        log_dirs: Sequence[Path | None] | None = None,
    ) -> None:
        super().__init__(world, interventions, seeds, hyperparameters, observation, log_dirs)
        self.check_hyperparameters(hyperparameters or {})
        # One torch thread per process: the runner runs a process per core.
        torch.set_num_threads(1)
        h = self.hyperparameters
        self.device = torch_device(h["device"])
        """Where the network, the observation table, Adam and the minibatches live."""
        self.n_envs = int(h["n_envs"])
        self.gamma = float(h["gamma"])
        self.pi_arch, self.vf_arch = parse_net_arch(h["policy_kwargs"].get("net_arch", [64, 64]))

        table = observation_table(world, observation)
        self.obs_shape = tuple(table.shape[1:])
        flat = table.reshape(len(table), -1)
        unique, self.row_of_state = np.unique(flat, axis=0, return_inverse=True)
        self.row_of_state = self.row_of_state.reshape(-1)
        self.active = np.flatnonzero(unique.any(axis=0))
        self.inputs = torch.as_tensor(
            unique[:, self.active], dtype=torch.float32, device=self.device
        )
        """The distinct observations, restricted to the features used: ``[U, used]``."""

        # The generators, and so the initial weights, on the CPU whatever the device.
        self.generators = [torch.Generator().manual_seed(int(s)) for s in self.seeds]
        self.net = BatchedActorCritic.initial(
            flat.shape[1],
            world.n_actions,
            self.pi_arch,
            self.vf_arch,
            self.generators,
            h["activation"],
        ).to(self.device)
        self.trainable = _Trainable(self.net, self.active)
        self.optimizer = SeedAdam(
            self.trainable.flat, float(h["learning_rate"]), (0.9, float(h["adam_beta2"]))
        )
        self._critic_answers: dict[tuple[int, tuple[int, ...], bytes], np.ndarray] = {}
        """:meth:`value_function`'s answers under the current weights."""
        self.training_worlds = TrainingWorlds(world, self.n_envs, self.interventions, observation)
        """Every seed's ``n_envs`` worlds, ``K x n_envs`` copies stepped in one call."""
        for k in range(len(self.seeds)):
            self.training_worlds.bind_critic(self.value_function(k), self.gamma, k)
        self.steps = 0
        """Environment steps taken per seed."""
        self.learning_rate_now = float(h["learning_rate"])
        self.ent_coef_now = float(h["ent_coef"])
        self.last_stats: dict[str, np.ndarray] = {}
        """The last update's mean statistics per seed (SB3's ``train/`` scalars)."""
        self._seeded = False
        self.reference: torch.Tensor | None = None
        """The reference policy of ``kl_coef``: log-probabilities ``[K, U, A]`` of every
        distinct observation, frozen at the start of the phase (``None`` when unused)."""
        self._freeze_reference()

    def _freeze_reference(self) -> None:
        self.reference = None
        if float(self.hyperparameters["kl_coef"]) > 0:
            self.reference = self.policy_table()[0].clone()

    def start_phase(
        self, interventions: Sequence[Intervention], hyperparameters: dict[str, Any] | None = None
    ) -> None:
        """Continue under new interventions (one per seed) and hyperparameters (replacing the
        defaults, as in the constructor): the weights, Adam's moments and step counts and the
        random generators are kept, and so is the step count; the learning rate is set anew.
        The next :meth:`train` starts new episodes on the same worlds, whose draws continue.
        ``kl_coef`` refers to the policy as it is now."""
        if isinstance(interventions, Intervention) or len(interventions) != len(self.seeds):
            raise ValueError(f"give one intervention object per seed ({len(self.seeds)})")
        overrides = dict(hyperparameters or {})
        self.check_hyperparameters(overrides)
        check_phase_hyperparameters(type(self), self.hyperparameters, overrides, 2)
        new = {**self.defaults, **overrides}
        self.hyperparameters = new
        self.gamma = float(new["gamma"])
        self.learning_rate_now = float(new["learning_rate"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate_now
        self.interventions = list(interventions)
        self._critic_answers.clear()
        self.training_worlds.set_intervention(self.interventions)
        for k in range(len(self.seeds)):
            self.training_worlds.bind_critic(self.value_function(k), self.gamma, k)
        self._freeze_reference()

    def value_function(self, k: int) -> Callable[[np.ndarray], np.ndarray]:
        """Seed ``k``'s critic of an observation batch, as an intervention asks for it.

        Remembered until the weights next change (:meth:`update`): a critic term asks every
        step for the observations of the copies frozen at that moment, and within a rollout
        most batches (85% on ``SafeInterruptibility-v0``) are ones asked before. A batch is
        remembered whole, not row by row, since a row's last bits depend on the batch it is
        computed in: an answer read back is the one the network would give again. A batch is
        known by a 16-byte digest of its observations, not the observations themselves, so
        that a rollout of large observations holds kilobytes of keys, not megabytes."""

        def values(obs: np.ndarray) -> np.ndarray:
            key = (k, obs.shape, hashlib.blake2b(obs.tobytes(), digest_size=16).digest())
            answer = self._critic_answers.get(key)
            if answer is None:
                answer = self._critic_answers[key] = self.net.values(obs, k)
            return answer

        return values

    def member(self, k: int) -> BatchedPPOMember:
        return self.member_class(
            self.net,
            k,
            world=self.world,
            intervention=self.interventions[k],
            seed=self.seeds[k],
            hyperparameters=self.hyperparameters,
            observation=self.observation,
            obs_shape=self.obs_shape,
            batch=self,
        )

    # -- training --------------------------------------------------------------------------
    def train(self, budget: Budget, hooks: Sequence[TrainingHooks] | None = None) -> None:
        """Train every seed for ``budget.steps`` environment steps, rounded up to whole
        rollouts of ``n_steps * n_envs`` as SB3 does; report seed ``k``'s rollouts to
        ``hooks[k]``. The first call seeds the worlds; a later one continues from the
        current weights on new episodes, the worlds' random draws running on."""
        if budget.steps is None:
            raise ValueError(f"{self.name} trains for a number of steps, not of episodes")
        hooks = list(hooks) if hooks is not None else [TrainingHooks() for _ in self.seeds]
        if len(hooks) != len(self.seeds):
            raise ValueError(f"got {len(hooks)} hooks for {len(self.seeds)} seeds: give one each")
        per_rollout = int(self.hyperparameters["n_steps"]) * self.n_envs
        rollouts = max(1, -(-budget.steps // per_rollout))
        writers = self._writers()
        start = self.steps
        try:
            states = self._reset_worlds() if not self._seeded else self._new_episodes()
            self._seeded = True
            for _ in range(rollouts):
                rollout, states = self.collect(states)
                self.steps += per_rollout
                # SB3's progress: what is left of the budget once this rollout is collected.
                self.set_learning_rate(1.0 - (self.steps - start) / (rollouts * per_rollout))
                for hook, episodes in zip(hooks, self.training_worlds.drain_each()):
                    hook.rollout_end(episodes, self.steps)
                stats = self.update(rollout)
                self._log(writers, stats, rollout)
        finally:
            for writer in writers:
                if writer is not None:
                    writer.close()

    def set_learning_rate(self, progress_remaining: float) -> None:
        """The optimiser's rate and the entropy bonus for the next update: ``learning_rate``
        and ``ent_coef``, each times ``progress_remaining`` (from 1 to 0 over the budget)
        where its schedule (``lr_schedule``, ``ent_schedule``) is ``"linear"``."""
        h = self.hyperparameters

        def scheduled(value: str, schedule: str) -> float:
            scale = progress_remaining if h[schedule] == "linear" else 1.0
            return float(h[value]) * scale

        rate = scheduled("learning_rate", "lr_schedule")
        self.ent_coef_now = scheduled("ent_coef", "ent_schedule")
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.learning_rate_now = rate

    def _reset_worlds(self) -> np.ndarray:
        """Copy ``i`` of seed ``s`` seeded ``s + i`` (``make_vec_env``); the states
        ``[K, n_envs]``."""
        self.training_worlds.seed([seed + i for seed in self.seeds for i in range(self.n_envs)])
        return self._new_episodes()

    def _new_episodes(self) -> np.ndarray:
        """New episodes on every copy, drawn on from the worlds' streams; the states
        ``[K, n_envs]``."""
        self.training_worlds.reset()
        return self.training_worlds.worlds.state.reshape(len(self.seeds), self.n_envs).copy()

    def policy_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every seed's log-probabilities ``[K, U, A]`` and values ``[K, U]`` of each
        distinct observation, from the trained weights (no gradient), on the device."""
        with torch.no_grad():
            x = self.inputs.expand(len(self.seeds), *self.inputs.shape)
            layers = self.trainable.layers()
            logits = batched_mlp(x, layers["pi"], self.net.act)
            values = batched_mlp(x, layers["vf"], self.net.act)[..., 0]
            log_p, _ = categorical(logits)
        return log_p, values

    def collect(self, states: np.ndarray) -> tuple[Rollout, np.ndarray]:
        """One rollout of ``n_steps`` on every seed's worlds from ``states [K, n_envs]``;
        the rollout and the states it ends in. The policy comes from a table of every
        distinct observation, computed once, unless the table holds more rows than a
        rollout has samples (a procedural pool's thousands of layouts):
        :meth:`collect_stepwise` then computes it for the observations met, step by step."""
        n_steps, k_seeds, n = int(self.hyperparameters["n_steps"]), len(self.seeds), self.n_envs
        if len(self.inputs) > n_steps * n:
            return self.collect_stepwise(states)
        log_p, values = self.policy_table()
        sample = self.action_sampler(log_p, n_steps)
        log_p_np, values_np = log_p.cpu().numpy(), values.cpu().numpy()
        shape = (n_steps, k_seeds, n)
        all_states = np.empty(shape, dtype=np.int64)
        actions = np.empty(shape, dtype=np.int64)
        rewards = np.empty(shape, dtype=np.float32)
        dones = np.empty(shape, dtype=bool)
        truncated = np.empty(shape, dtype=bool)
        final = np.empty(shape, dtype=np.int64)
        worlds = self.training_worlds
        for t in range(n_steps):
            all_states[t] = states
            a = sample(t, self.row_of_state[states])
            actions[t] = a
            result = worlds.step(a.reshape(-1), observe=False)
            rewards[t] = result.reward.reshape(k_seeds, n)  # float32, as SB3's DummyVecEnv
            dones[t] = (result.terminated | result.truncated).reshape(k_seeds, n)
            truncated[t] = result.truncated.reshape(k_seeds, n)
            final[t] = result.final_states.reshape(k_seeds, n)
            states = worlds.worlds.state.reshape(k_seeds, n).copy()
        rows = self.row_of_state[all_states]
        seed_index = np.arange(k_seeds)[None, :, None]
        # Truncated (never terminated) steps: + gamma * V(terminal observation), as SB3.
        if truncated.any():
            bootstrap = values_np[seed_index, self.row_of_state[final]]
            rewards = np.where(truncated, rewards + self.gamma * bootstrap, rewards)
        step_values = values_np[seed_index, rows]
        step_log_probs = log_p_np[seed_index, rows, actions]
        last_values = values_np[np.arange(k_seeds)[:, None], self.row_of_state[states]]
        rollout = self._rollout(
            rows, actions, rewards, dones, step_values, step_log_probs, last_values,
            all_states, truncated, final, log_p_np, values_np,
        )  # fmt: skip
        return rollout, states

    def _rollout(
        self,
        rows: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        step_values: np.ndarray,
        step_log_probs: np.ndarray,
        last_values: np.ndarray,
        states: np.ndarray,
        truncated: np.ndarray,
        final: np.ndarray,
        policy_log_p: np.ndarray | None = None,
        policy_values: np.ndarray | None = None,
    ) -> Rollout:
        """A collected rollout with its GAE advantages and returns."""
        advantages, returns = compute_gae(
            rewards,
            step_values,
            dones,
            last_values,
            self.gamma,
            float(self.hyperparameters["gae_lambda"]),
        )
        return Rollout(
            rows,
            actions,
            rewards,
            dones,
            step_values,
            step_log_probs,
            advantages,
            returns,
            states,
            truncated,
            final,
            policy_log_p,
            policy_values,
        )

    def policy_of_rows(self, rows: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Every seed's log-probabilities ``[K, n, A]`` and values ``[K, n]`` (numpy) of the
        observations in rows ``rows [K, n]`` of the table, from the trained weights."""
        with torch.no_grad():
            x = self.inputs[torch.as_tensor(rows, device=self.device)]
            layers = self.trainable.layers()
            log_p, _ = categorical(batched_mlp(x, layers["pi"], self.net.act))
            values = batched_mlp(x, layers["vf"], self.net.act)[..., 0]
        return log_p, values.cpu().numpy()

    def values_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`policy_of_rows`' values alone (the critic's pass, not the actor's)."""
        with torch.no_grad():
            x = self.inputs[torch.as_tensor(rows, device=self.device)]
            values = batched_mlp(x, self.trainable.layers()["vf"], self.net.act)[..., 0]
        return values.cpu().numpy()

    def collect_stepwise(self, states: np.ndarray) -> tuple[Rollout, np.ndarray]:
        """:meth:`collect` with the policy computed at each step for the observations met,
        not once for the whole table: the same actions from the same uniforms (inverse-CDF
        sampling, each seed's own generator), at a cost that grows with the rollout rather
        than with the number of states."""
        n_steps, k_seeds, n = int(self.hyperparameters["n_steps"]), len(self.seeds), self.n_envs
        uniforms = np.stack(
            [torch.rand(n_steps, n, generator=g).numpy() for g in self.generators], axis=1
        )
        shape = (n_steps, k_seeds, n)
        all_states = np.empty(shape, dtype=np.int64)
        actions = np.empty(shape, dtype=np.int64)
        rewards = np.empty(shape, dtype=np.float32)
        dones = np.empty(shape, dtype=bool)
        truncated = np.empty(shape, dtype=bool)
        final = np.empty(shape, dtype=np.int64)
        step_values = np.empty(shape, dtype=np.float32)
        step_log_probs = np.empty(shape, dtype=np.float32)
        worlds = self.training_worlds
        last = self.world.n_actions - 1
        for t in range(n_steps):
            all_states[t] = states
            log_p, values = self.policy_of_rows(self.row_of_state[states])
            cdf = torch.cumsum(log_p.exp(), dim=-1).cpu().numpy()
            a = np.minimum((cdf < uniforms[t][..., None]).sum(-1), last)
            actions[t] = a
            step_values[t] = values
            step_log_probs[t] = np.take_along_axis(log_p.cpu().numpy(), a[..., None], -1)[..., 0]
            result = worlds.step(a.reshape(-1), observe=False)
            rewards[t] = result.reward.reshape(k_seeds, n)
            dones[t] = (result.terminated | result.truncated).reshape(k_seeds, n)
            truncated[t] = result.truncated.reshape(k_seeds, n)
            final[t] = result.final_states.reshape(k_seeds, n)
            if truncated[t].any():  # + gamma * V(terminal observation), as SB3
                bootstrap = self.values_of_rows(self.row_of_state[final[t]])
                rewards[t] = np.where(truncated[t], rewards[t] + self.gamma * bootstrap, rewards[t])
            states = worlds.worlds.state.reshape(k_seeds, n).copy()
        last_values = self.values_of_rows(self.row_of_state[states])
        rows = self.row_of_state[all_states]
        rollout = self._rollout(
            rows, actions, rewards, dones, step_values, step_log_probs, last_values,
            all_states, truncated, final,
        )  # fmt: skip
        return rollout, states

    def action_sampler(
        self, log_p: torch.Tensor, n_steps: int
    ) -> Callable[[int, np.ndarray], np.ndarray]:
        """``sample(step, rows [K, n_envs]) -> actions [K, n_envs]`` for a rollout of the
        policies ``log_p [K, U, A]``: inverse-CDF sampling with uniforms drawn from each
        seed's generator once per rollout (on the CPU, whatever the device)."""
        cdf = torch.cumsum(log_p.exp(), dim=-1).cpu().numpy()
        uniforms = np.stack(
            [torch.rand(n_steps, self.n_envs, generator=g).numpy() for g in self.generators],
            axis=1,
        )
        seed_index = np.arange(len(self.seeds))[:, None]
        last = cdf.shape[-1] - 1

        def sample(step: int, rows: np.ndarray) -> np.ndarray:
            below = cdf[seed_index, rows] < uniforms[step][..., None]
            return np.minimum(below.sum(-1), last)

        return sample

    def permutations(self, size: int) -> torch.Tensor:
        """One fresh random permutation of the samples per seed, from its generator (a CPU
        tensor, whatever the device)."""
        return torch.stack([torch.randperm(size, generator=g) for g in self.generators])

    summed_updates: ClassVar[bool] = True
    """Compute a full-batch epoch from sums per observation and action
    (:meth:`update_summed`) rather than per sample; ``False`` keeps the per-sample path for
    every batch size (the tests compare the two)."""

    written_out_backward: ClassVar[bool] = True
    """Compute :meth:`update_summed`'s gradients with :mod:`~offswitch.agents.
    summed_backward` where it covers the loss; ``False`` keeps autograd's backward pass
    (the tests compare the two, bit for bit)."""

    def update(self, rollout: Rollout) -> dict[str, np.ndarray]:
        """``n_epochs`` passes over the rollout in shuffled minibatches, every seed at once;
        the mean statistics per seed (SB3's ``train/`` scalars). When one minibatch holds the
        whole rollout, :meth:`update_summed` computes the same update from sums."""
        n_steps, _, n_envs = rollout.rows.shape
        size = n_steps * n_envs
        self._critic_answers.clear()  # the weights change
        if (
            self.summed_updates
            and int(self.hyperparameters["batch_size"]) >= size
            and len(self.inputs) <= size
            and rollout.policy_log_p is not None
        ):
            return self.update_summed(rollout)
        return self.update_per_sample(rollout)

    def _samples(self, a: np.ndarray) -> torch.Tensor:
        """``[n_steps, K, n_envs]`` to ``[K, n_envs * n_steps]``, SB3's swap_and_flatten order,
        on the device."""
        flat = np.ascontiguousarray(a.transpose(1, 2, 0))
        return torch.as_tensor(flat, device=self.device).reshape(len(self.seeds), -1)

    def update_summed(self, rollout: Rollout) -> dict[str, np.ndarray]:
        """A full-batch update (``batch_size >= n_steps * n_envs``) computed from sums over
        the samples of each distinct observation and action, once per rollout, instead of
        per sample in every epoch: the same update in exact arithmetic, with float32 sums
        taken in another order (the module docstring says what that changes).

        Within a rollout the policy is fixed, so a sample's old log-probability and old
        value depend only on its observation ``u`` and action ``a``, and so does its
        probability ratio ``r(u, a)`` at every epoch. SB3's clipped surrogate
        ``min(A r, A clip(r))`` is ``A min(r, clip(r))`` for ``A > 0`` and
        ``A max(r, clip(r))`` for ``A < 0``, so the minibatch's surrogate is
        ``sum_{u,a} G+(u, a) min(r, clip r) + G-(u, a) max(r, clip r)`` with ``G+`` and
        ``G-`` the sums of the positive and the negative normalised advantages; the squared
        value error is ``n(u) (V(u) - mean R(u))^2 + sum_i (R_i - mean R(u))^2``; the entropy,
        the floor's hinge and the KL are each a count-weighted sum. SB3 shuffles the one
        minibatch each epoch: that changes only the order of a sum, so no permutation is
        drawn here."""
        h = self.hyperparameters
        k_seeds, device, n_actions = len(self.seeds), self.device, self.world.n_actions
        n_rows = len(self.inputs)
        cells = n_rows * n_actions
        rows = self._samples(rollout.rows)
        row_action = rows * n_actions + self._samples(rollout.actions)
        n = rows.shape[1]
        advantages = self._samples(rollout.advantages).float()
        if bool(h["normalize_advantage"]) and n > 1:  # as ppo_losses, over the one minibatch
            mean = advantages.mean(dim=1, keepdim=True)
            std = advantages.std(dim=1, keepdim=True)
            if float(h["advantage_floor"]) > 0:
                std = torch.clamp(std, min=float(h["advantage_floor"]))
            advantages = (advantages - mean) / (std + 1e-8)

        def per_cell(weights: torch.Tensor) -> torch.Tensor:
            return torch.zeros(k_seeds, cells, device=device).scatter_add_(1, row_action, weights)

        count_ua = per_cell(torch.ones_like(advantages))
        gains = per_cell(advantages.clamp(min=0))
        losses_ = per_cell(advantages.clamp(max=0))
        visited = count_ua > 0
        count_u = count_ua.view(k_seeds, n_rows, n_actions).sum(-1)
        # Each observation's mean return and the squared deviations from it, in float64, so
        # that the value loss is exact and its gradient n(u) (V(u) - mean R(u)).
        returns = self._samples(rollout.returns).double()
        by_row = torch.zeros(k_seeds, n_rows, dtype=torch.float64, device=device)
        mean_return = by_row.scatter_add(1, rows, returns) / count_u.double().clamp(min=1)
        deviation = returns - mean_return.gather(1, rows)
        spread = by_row.scatter_add(1, rows, deviation * deviation).float()
        mean_return = mean_return.float()
        old_log_p = torch.as_tensor(rollout.policy_log_p, device=device).reshape(k_seeds, cells)
        old_values = torch.as_tensor(rollout.policy_values, device=device)

        clip_range = float(h["clip_range"])
        clip_range_vf = None if h["clip_range_vf"] is None else float(h["clip_range_vf"])
        kl_coef, reference = float(h["kl_coef"]), self.reference
        prob_floor, max_norm = float(h["prob_floor"]), float(h["max_grad_norm"])
        vf_coef, act = float(h["vf_coef"]), self.net.act
        x = self.inputs.expand(k_seeds, *self.inputs.shape)
        collected: list[torch.Tensor] = []
        reference_kls: list[torch.Tensor] = []
        # The gradient written out (summed_backward), autograd's bits without autograd,
        # where it covers the loss; autograd's own backward pass elsewhere.
        written_out = (
            self.written_out_backward
            and clip_range_vf is None
            and not (kl_coef > 0 and reference is not None)
            and act in ACTIVATION_BACKWARD
            and device.type == "cpu"
        )
        if written_out:
            weights = loss_weights(
                gains, losses_, count_u, n, self.ent_coef_now, vf_coef, n_actions, prob_floor > 0
            )
        for _ in range(int(h["n_epochs"])):
            layers = self.trainable.layers()
            with torch.set_grad_enabled(not written_out):
                logits, pi_hidden = mlp_forward(x, layers["pi"], act)
                critic, vf_hidden = mlp_forward(x, layers["vf"], act)
                values = critic[..., 0]
                policy = categorical_parts(logits)
                # Cells no sample visited carry no weight; a ratio of 1 keeps them finite.
                log_ratio = torch.where(
                    visited, policy.log_p.reshape(k_seeds, cells) - old_log_p, 0.0
                )
                ratio = torch.exp(log_ratio)
                clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
                surrogate = gains * torch.min(ratio, clipped) + losses_ * torch.max(ratio, clipped)
                policy_loss = -surrogate.sum(1) / n
                if clip_range_vf is not None:
                    values = old_values + torch.clamp(
                        values - old_values, -clip_range_vf, clip_range_vf
                    )
                error = values - mean_return
                value_loss = (count_u * error**2 + spread).sum(1) / n
                entropy_loss = -(count_u * policy.entropy).sum(1) / n
                total = policy_loss + self.ent_coef_now * entropy_loss + vf_coef * value_loss
                floor_relu = None
                if prob_floor > 0:
                    floor_relu = torch.relu(math.log(prob_floor) - policy.log_p)
                    total = total + (count_u * floor_relu.sum(-1)).sum(1) / n
                if kl_coef > 0 and reference is not None:
                    mean_kl = (count_u * reference_kl(reference, policy.log_p)).sum(1) / n
                    total = total + kl_coef * mean_kl
                    reference_kls.append(mean_kl.detach())
            if written_out:
                g_logits = policy_head_gradient(
                    weights, logits, *policy[:4], visited, ratio, clipped, clip_range, floor_relu
                )
                g_critic = value_head_gradient(weights, error)
                grads = mlp_backward(x, layers["pi"], pi_hidden, g_logits, act)
                grads += mlp_backward(x, layers["vf"], vf_hidden, g_critic, act)
                self.trainable.set_gradients(grads, max_norm)  # each seed's own norm, as SB3
            else:
                total.sum().backward()
                self.trainable.gather_gradients(max_norm)  # each seed's own norm, as SB3
            self.optimizer.step()
            with torch.no_grad():
                approx_kl = (count_ua * ((ratio - 1) - log_ratio)).sum(1) / n
                clip_fraction = (count_ua * ((ratio - 1).abs() > clip_range)).sum(1) / n
                parts = (policy_loss, value_loss, entropy_loss, clip_fraction, approx_kl)
                collected.append(torch.stack(parts).detach())
        self.trainable.push()
        # SB3 logs the last epoch's approx_kl (here one minibatch an epoch).
        return self._record_stats(
            [c[:4] for c in collected], [collected[-1][4]], total, reference_kls
        )

    def update_per_sample(self, rollout: Rollout) -> dict[str, np.ndarray]:
        """:meth:`update` per sample, in shuffled minibatches (any batch size)."""
        h = self.hyperparameters
        batch_size, n_actions = int(h["batch_size"]), self.world.n_actions
        k_seeds, device = len(self.seeds), self.device

        samples = self._samples
        rows = samples(rollout.rows)
        row_action = rows * n_actions + samples(rollout.actions)
        floats = torch.stack(
            [
                samples(x).float()
                for x in (rollout.log_probs, rollout.advantages, rollout.returns, rollout.values)
            ],
            dim=-1,
        )
        size = rows.shape[1]
        # Per distinct observation when there are fewer of them than samples in a minibatch.
        table = len(self.inputs) <= min(batch_size, size)
        max_norm = float(h["max_grad_norm"])
        clip_range_vf = None if h["clip_range_vf"] is None else float(h["clip_range_vf"])
        kl_coef, reference = float(h["kl_coef"]), self.reference
        prob_floor = float(h["prob_floor"])
        seed_rows = torch.arange(k_seeds, device=device)[:, None]
        reference_kls: list[torch.Tensor] = []
        collected: list[torch.Tensor] = []
        approx_kl: list[torch.Tensor] = []
        for _ in range(int(h["n_epochs"])):
            approx_kl = []  # SB3 logs the last epoch's
            order = self.permutations(size).to(device)
            for start in range(0, size, batch_size):
                index = order[:, start : start + batch_size]
                rows_b = rows.gather(1, index)
                data = floats.gather(1, index[..., None].expand(-1, -1, floats.shape[-1]))
                if table:
                    x = self.inputs.expand(k_seeds, *self.inputs.shape)
                    at, at_action = rows_b, row_action.gather(1, index)
                else:
                    x = self.inputs[rows_b]
                    at = torch.arange(rows_b.shape[1], device=device).expand_as(rows_b)
                    at_action = at * n_actions + row_action.gather(1, index) % n_actions
                layers = self.trainable.layers()
                logits = batched_mlp(x, layers["pi"], self.net.act)
                values = batched_mlp(x, layers["vf"], self.net.act)[..., 0]
                log_p, entropy = categorical(logits)
                hinge = None
                if prob_floor > 0:
                    hinge = torch.relu(math.log(prob_floor) - log_p).sum(-1).gather(1, at)
                kl = None
                if kl_coef > 0 and reference is not None:
                    ref = reference if table else reference[seed_rows, rows_b]
                    kl = reference_kl(ref, log_p).gather(1, at)
                losses = ppo_losses(
                    log_p.reshape(k_seeds, -1).gather(1, at_action),
                    entropy.gather(1, at),
                    values.gather(1, at),
                    data[..., 0],
                    data[..., 1],
                    data[..., 2],
                    data[..., 3],
                    float(h["clip_range"]),
                    clip_range_vf,
                    self.ent_coef_now,
                    float(h["vf_coef"]),
                    bool(h["normalize_advantage"]),
                    kl,
                    kl_coef,
                    float(h["advantage_floor"]),
                    hinge,
                )
                losses.total.sum().backward()
                self.trainable.gather_gradients(max_norm)  # each seed's own norm, as SB3
                self.optimizer.step()
                parts = (losses.policy, losses.value, losses.entropy, losses.clip_fraction)
                collected.append(torch.stack(parts).detach())
                approx_kl.append(losses.approx_kl)
                if losses.reference_kl is not None:
                    reference_kls.append(losses.reference_kl.detach())
        self.trainable.push()
        return self._record_stats(collected, approx_kl, losses.total, reference_kls)

    def _record_stats(
        self,
        collected: list[torch.Tensor],
        approx_kl: list[torch.Tensor],
        total: torch.Tensor,
        reference_kls: list[torch.Tensor],
    ) -> dict[str, np.ndarray]:
        """SB3's ``train/`` scalars per seed from an update's minibatches: ``collected`` holds
        each minibatch's (policy, value, entropy losses, clip fraction), averaged over all;
        ``approx_kl`` those of the last epoch; ``total``, the last minibatch's loss."""
        means = torch.stack(collected).mean(0).cpu().numpy()
        stats = {
            "train/policy_gradient_loss": means[0],
            "train/value_loss": means[1],
            "train/entropy_loss": means[2],
            "train/clip_fraction": means[3],
            "train/approx_kl": torch.stack(approx_kl).mean(0).cpu().numpy(),
            "train/loss": total.detach().cpu().numpy(),
        }
        if reference_kls:
            stats["train/reference_kl"] = torch.stack(reference_kls).mean(0).cpu().numpy()
        self.last_stats = stats
        return stats

    # -- logging ---------------------------------------------------------------------------
    def _writers(self) -> list[Any]:
        writers: list[Any] = []
        for log_dir in self.log_dirs:
            if log_dir is None:
                writers.append(None)
                continue
            from torch.utils.tensorboard import SummaryWriter

            writers.append(SummaryWriter(str(log_dir)))
        return writers

    def _log(self, writers: list[Any], stats: dict[str, np.ndarray], rollout: Rollout) -> None:
        if not any(w is not None for w in writers):
            return
        explained = explained_variance(rollout.values, rollout.returns)
        h = self.hyperparameters
        for k, writer in enumerate(writers):
            if writer is None:
                continue
            scalars = {name: float(value[k]) for name, value in stats.items()}
            scalars["train/explained_variance"] = float(explained[k])
            scalars["train/learning_rate"] = float(self.learning_rate_now)
            scalars["train/clip_range"] = float(h["clip_range"])
            tags = TB_SCALARS + (("train/reference_kl",) if "train/reference_kl" in scalars else ())
            write_scalars(writer, {tag: scalars[tag] for tag in tags}, self.steps)


def explained_variance(values: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """SB3's ``explained_variance`` per seed of arrays ``[n_steps, K, n_envs]``: 1 - Var[returns
    - values] / Var[returns], NaN where the returns do not vary."""
    y = returns.transpose(1, 0, 2).reshape(returns.shape[1], -1)
    pred = values.transpose(1, 0, 2).reshape(values.shape[1], -1)
    var_y = np.var(y, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var_y == 0, np.nan, 1 - np.var(y - pred, axis=1) / var_y)


# -- one seed ------------------------------------------------------------------------------


class BatchedPPOMember(Learner):
    """One seed of a :class:`BatchedPPO` (or one loaded by :func:`load_member`): predicts,
    gives its critic, saves and describes itself. Training happens on the batch."""

    name = NAME
    description = DESCRIPTION
    defaults: ClassVar[dict[str, Any]] = DEFAULTS
    default_budget = BatchedPPO.default_budget

    def __init__(
        self,
        net: BatchedActorCritic,
        k: int,
        *,
        world: TabularWorld | None,
        intervention: Intervention | None,
        seed: int,
        hyperparameters: dict[str, Any],
        observation: str,
        obs_shape: tuple[int, ...],
        steps: int = 0,
        batch: BatchedPPO | None = None,
    ) -> None:
        super().__init__(world, intervention, seed, hyperparameters, observation)  # type: ignore[arg-type]
        self.net, self.k = net, k
        self.obs_shape = tuple(obs_shape)
        self._steps, self._batch = steps, batch
        # Sampled actions come from a generator of their own, never training's.
        state = np.random.SeedSequence([int(seed), 0x9E3779B9]).generate_state(1)[0]
        self.eval_generator = torch.Generator().manual_seed(int(state))

    @property
    def steps(self) -> int:
        """Environment steps trained (those of the batch it belongs to, if any)."""
        return self._batch.steps if self._batch is not None else self._steps

    def train(self, budget: Budget, hooks: TrainingHooks | None = None) -> None:
        raise TypeError(
            f"a {self.name} member does not train alone: train the BatchedPPO that holds it"
        )

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        # On the CPU: the evaluation generator is a CPU one, whatever the network's device.
        logits = self.net.logits(obs, self.k).cpu()
        if deterministic:
            return logits.argmax(dim=1).numpy()
        probs = torch.softmax(logits, dim=1)
        return torch.multinomial(probs, 1, generator=self.eval_generator)[:, 0].numpy()

    def value_of_obs(self, obs: np.ndarray) -> np.ndarray:
        """The critic's value of each observation in the batch."""
        return self.net.values(obs, self.k)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_envs": int(self.hyperparameters["n_envs"])}

    def save(self, directory: Path) -> list[Path]:
        """``model.pt``, this seed's weights as a plain dict of tensors named as SB3's policy
        names them, and ``model.json``, what :func:`load_member` needs to rebuild it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights, config = directory / MODEL_FILE, directory / CONFIG_FILE
        torch.save(self.net.state_dict(self.k), weights)
        config.write_text(
            json.dumps(
                {
                    "learner": self.name,
                    "format": FORMAT,
                    "seed": self.seed,
                    "observation": self.observation,
                    "observation_shape": list(self.obs_shape),
                    "n_actions": self.net.n_actions,
                    "net_arch": {"pi": list(self.net.pi), "vf": list(self.net.vf)},
                    "activation": self.net.activation,
                    "hyperparameters": self.hyperparameters,
                    "steps": self.steps,
                },
                indent=2,
            )
        )
        return [weights, config]


BatchedPPO.member_class = BatchedPPOMember


class BatchedPPOSB3Member(BatchedPPOMember):
    """One seed of a :class:`BatchedPPOSB3`."""

    name = BatchedPPOSB3Declared.name
    description = BatchedPPOSB3Declared.description
    defaults: ClassVar[dict[str, Any]] = BatchedPPOSB3Declared.defaults
    default_budget = BatchedPPOSB3Declared.default_budget


class BatchedPPOSB3(BatchedPPOSB3Declared, BatchedPPO):
    """``batched-ppo-sb3``: the same batched learner at :data:`SB3_DEFAULTS`, Stable-Baselines3's
    PPO at :class:`~offswitch.agents.sb3.PPOLearner`'s defaults with none of
    :data:`CONVERGENCE_FIX`, so that a run follows SB3's (``docs/results/ppo_equivalence.md``).
    Its declarations are :class:`BatchedPPOSB3Declared`'s."""

    member_class = BatchedPPOSB3Member


MEMBER_CLASSES: dict[str, type[BatchedPPOMember]] = {
    cls.name: cls for cls in (BatchedPPOMember, BatchedPPOSB3Member)
}
"""The member class of each learner name ``model.json`` may record."""


def load_member(directory: Path) -> BatchedPPOMember:
    """A member saved by :meth:`BatchedPPOMember.save`, ready to predict. ``model.pt`` is
    read with ``weights_only=True`` and must hold tensors only, of the shapes ``model.json``
    says."""
    directory = Path(directory)
    config = json.loads((directory / CONFIG_FILE).read_text())
    member_class = MEMBER_CLASSES.get(config.get("learner"))
    if member_class is None or config.get("format") != FORMAT:
        raise ValueError(
            f"{directory / CONFIG_FILE} is not a {NAME} or {SB3_NAME} model of format {FORMAT}: "
            f"learner={config.get('learner')!r}, format={config.get('format')!r}"
        )
    try:
        state = torch.load(directory / MODEL_FILE, weights_only=True, map_location="cpu")
    except Exception as err:  # the unpickler names what it refused
        raise ValueError(
            f"{directory / MODEL_FILE} holds more than plain tensors; refusing to load it: {err}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and type(value) is torch.Tensor for key, value in state.items()
    ):
        raise ValueError(
            f"{directory / MODEL_FILE} must be a dict of parameter name -> tensor, nothing else"
        )
    obs_shape = tuple(config["observation_shape"])
    pi, vf = parse_net_arch(config["net_arch"])
    expected = {
        f"{name}.{part}" for name, _, _ in sb3_layer_names(pi, vf) for part in ("weight", "bias")
    }
    if set(state) != expected:
        raise ValueError(
            f"{directory / MODEL_FILE} has parameters {sorted(state)}: expected {sorted(expected)}"
        )
    activation = config.get("activation", "tanh")
    if activation not in ACTIVATION_FUNCTIONS:
        raise ValueError(
            f"{directory / CONFIG_FILE}: activation={activation!r} is not one of "
            f"{', '.join(ACTIVATION_FUNCTIONS)}"
        )
    net = BatchedActorCritic.from_state_dicts(
        [state], int(np.prod(obs_shape)), int(config["n_actions"]), pi, vf, activation
    )
    return member_class(
        net,
        0,
        world=None,
        intervention=None,
        seed=int(config["seed"]),
        hyperparameters=config["hyperparameters"],
        observation=config["observation"],
        obs_shape=obs_shape,
        steps=int(config.get("steps", 0)),
    )
