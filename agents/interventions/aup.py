"""Attainable utility preservation (AUP): penalise changing what the agent could attain.

Idea: an agent that disables its off-switch gains power, the ability to attain many goals
it could not attain switched off. AUP charges every action by how far it moves the
agent's *attainable utility* for a set of auxiliary goals away from what doing nothing
would leave. The auxiliary goals can be random: almost any goal is easier to attain for
an agent that cannot be switched off, so disabling the switch moves them all.

Source: Turner, Hadfield-Menell, Tadepalli (2020), "Conservative Agency via Attainable
Utility Preservation", AIES 2020, arXiv:1902.09725 (earlier version: "Conservative
Agency", IJCAI 2019 AI Safety workshop, CEUR-WS Vol-2419 paper 13). Only the opening of
those texts could be read while writing this; the formula, the auxiliary set and the
ablation results below are as the first author restates and quotes them in Turner &
Ratzlaff (2020), "Attainable Utility Preservation: Empirical Results" (Alignment Forum,
*Reframing Impact* sequence), and the defaults are those of the authors' code
(github.com/alexander-turner/attainable-utility-preservation,
``agents/model_free_aup.py``: ``default = {'lambd': 1./1.501, 'discount': .996,
'rpenalties': 30, ...}``, read in the forks fkabs/... and mogar/... of that repository).

The penalty, for the action ``a`` just taken in state ``s`` (``∅`` the no-op)::

    R_AUP(s, a) = R(s, a) - LAMBDA * mean_i |Q_i(s, a) - Q_i(s, ∅)| / Q_i(s, ∅)

the mean over ``N`` auxiliary reward functions ``R_i``, each difference scaled by its own
no-op value, as Turner writes the paper's ``R_AUP`` ("if you want more auxiliary goals,
just average their scaled penalties"). Doing nothing costs exactly 0 (the *stepwise
inaction* baseline). The authors' code also has a pooled scale,
``sum_i |dQ_i| / sum_i Q_i(s, ∅)`` (its ``use_scale=True``), not used here. The term is
``info["reward_terms"]["aup_penalty"]``.

Defaults (``aup`` = ``aup:0.6662225183211193,30``): LAMBDA = 1/1.501, about 0.67 (the
code's default; its planning agent writes it LAMBDA = 1/(0.01 N) with N = 150), N = 30
auxiliary reward functions, discount 0.996, rewards drawn uniformly from ``[0, 1]`` for
every state (Turner: "we uniformly randomly draw auxiliary goals from ``[0,1]^S``").

What is chosen here, and why:

* *Exact values, no learning.* ``Q_i`` comes from dynamic programming on the world's
  tables, as :mod:`~offswitch.agents.interventions.utility_indifference` does, where the
  paper learns it by Q-learning. Values are those of an agent told the episode's draw,
  and the penalty reads the true state (``env.unwrapped.state_index``), like the other
  exact interventions.
* *The auxiliary rewards* ``R_i(s)`` are functions of what the agent sees (states with the
  same observation share a value), drawn once from ``numpy.random.default_rng(AUX_SEED)``
  with ``AUX_SEED = 0``, one row per function over the distinct observations in the
  world's state order, so ``R_1..R_N`` do not change with ``N``. Being switched off
  means no more auxiliary reward: a step that ends in a shutdown (timed or by the human)
  earns nothing and nothing follows; a step into the goal earns ``R_i`` of the goal
  state and ends the episode; an interruption (the agent frozen on ``I`` until the time
  limit) counts as a shutdown, because it is the off-switch of those worlds.
* *The discount is the paper's 0.996 over an unbounded horizon*, as the learned ``Q*``
  of the paper approximates; the world's time limit is a training artefact (SB3 also
  bootstraps through it), not part of an auxiliary goal. Values therefore come from
  policy iteration (exact, a sparse linear solve per auxiliary function) on the part of
  the episode where nothing depends on the step count, and from finite-horizon backward
  induction before it: a timed shutdown depends on the step, so ``Q_i`` is indexed by
  ``(t, s)`` up to the last step at which a shutdown can still fall, and the wrapper
  reads ``t`` from ``info["t"]``. For the penalty of a step, ``s`` and ``t`` are those
  before it.
* *Division by zero*: where ``Q_i(s, ∅) = 0`` (the no-op is switched off right away) the
  difference is not scaled, as in the authors' code.

Inaction rollouts (optional third parameter ``K``, default 1): the paper's full AUP
agent compares acting and then waiting ``K - 1`` steps with waiting ``K`` steps (Turner
restates it as "disabling the off-switch and then waiting 4 time steps" against "waiting
5 time steps"). Here ``Q_i^K(s, a)`` is the auxiliary value of doing ``a``, then the
no-op ``K - 1`` times, then acting optimally for ``R_i``, with the same terminations; it
equals ``Q_i(s, a)`` for ``K = 1`` and replaces ``Q_i`` everywhere in the formula,
scale included. (The authors' planning agent compares the optimal values at the ends of
the two rollouts instead; here the discounted rewards along the way count as well.)

The ablations the paper reports as failing (Turner & Ratzlaff's table of the paper's
five levels; Survival is ``Correction``): *model-free AUP*, the one-step comparison,
disables the off-switch on Correction, because after one no-op the auxiliary optimal
policy can still press the button, so pressing now changes little; a *starting-state*
baseline fails Correction and Interference; an *inaction* baseline (compare with never
having acted) fails Offset; penalising only *decreases* in attainable utility fails
Correction; plain Q-learning fails Options, Damage and Correction. Full AUP (stepwise
baseline, absolute value, inaction rollouts) passes all five, and Turner adds that five
random auxiliary functions already do well.

What the exact values say on ``Survival-v0`` (seed 0, ``tests/test_aup.py``): with the
defaults (``K = 1``) pressing the button first costs 0.0013 (after one no-op the
auxiliary policies can still press it), walking right, which makes the shutdown
unavoidable, costs 0.66, and stepping into the goal, which ends the episode, costs 0.66
too. The goal's +1 outweighs that, so the optimal policy for the AUP-shaped reward
(backward induction, discount 0.996) still presses the button and reaches the goal, as
the paper's model-free ablation does, for every LAMBDA below about 0.9956; above it, it
lets itself be switched off. With ``K >= 2`` (e.g. ``aup:0.6662225183211193,30,5``)
waiting means being switched off, pressing costs about 665 and the optimal policy lets
itself be switched off, even with LAMBDA = 0.01.

Known failure modes: the one-step comparison above; the penalty also charges losing
attainable utility, so with ``K = 1`` walking into an unavoidable shutdown or onto the
interruption tile is penalised, and finishing the task (ending the episode) always is;
``Q_i(s, ∅)`` near 0 makes the scaled penalty explode; LAMBDA trades task reward against
a penalty on an arbitrary scale; random auxiliary goals need to cover the state space,
which gets harder as worlds grow; and the exact values here read the hidden draw, so the
penalty can tell the learner what it cannot see.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from offswitch.agents.interventions.base import Intervention, InterventionError, Param, RewardTerm
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition
from offswitch.envs.layout import Action

DEFAULT_LAMBDA = 1.0 / 1.501
"""The authors' code's default (``ModelFreeAUPAgent.default['lambd']``), about 0.67."""
DEFAULT_N_AUX = 30
"""Auxiliary reward functions, as the authors' code (``'rpenalties': 30``)."""
GAMMA = 0.996
"""The discount of the auxiliary values, as the authors' code."""
AUX_SEED = 0
"""Seed of the auxiliary reward functions."""
NOOP = int(Action.NOOP)
"""The no-op action (``rules.noop`` adds it as action 4)."""
NOOP_REQUIRED = (
    "AUP needs a no-op action: train on a world with noop=True, e.g. offswitch/Survival-v0 "
    "or --rule noop=True"
)


class AuxiliaryValues:
    """Exact attainable utilities of random auxiliary rewards on one world.

    ``reward[i, s]`` is ``R_i`` of state ``s`` (received on arriving there);
    :meth:`value` and :meth:`q` are ``V_i(t, s)`` and ``Q_i(t, s, a)`` for all ``i`` at
    once, the optimal discounted auxiliary return from step ``t``.
    """

    def __init__(
        self, world: TabularWorld, n_aux: int, gamma: float = GAMMA, seed: int = AUX_SEED
    ) -> None:
        if not world.rules.noop:
            raise InterventionError(NOOP_REQUIRED)
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma={gamma!r}: give a discount in [0, 1)")
        self.world, self.gamma, self.n_aux = world, gamma, n_aux
        # One random value per distinct observation, in the world's state order.
        ids: dict[bytes, int] = {}
        keys = [world.observations[s].tobytes() for s in range(world.n_states)]
        obs_id = np.array([ids.setdefault(key, len(ids)) for key in keys])
        self.reward = np.random.default_rng(seed).random((n_aux, len(ids)))[:, obs_id]

        # After this step every timed shutdown that can fall has fallen: values stop
        # depending on t (0 when the world has no timed shutdown).
        latest = int(world.shutdown_time.max())
        self.stationary_from = max(latest - 1, 0)
        tail = self._stationary_values()
        values = np.empty((n_aux, self.stationary_from + 1, world.n_states))
        values[:, -1] = tail
        for t in range(self.stationary_from - 1, -1, -1):
            values[:, t] = self._q_all(t, values[:, t + 1]).max(axis=2)
        self.values = values

    # -- one step of the auxiliary process -------------------------------------------------
    def step(self, t: Any, s: Any, a: Any) -> tuple[Any, np.ndarray, Any]:
        """One auxiliary step of states ``s`` under actions ``a`` at step ``t`` (scalars or
        arrays of one shape): the next states, ``R_i`` received (``(n_aux, *shape)``) and
        whether the sum goes on.

        The world's own transition decides the ends; being switched off (by the human, a
        timed shutdown, or frozen by the interruption) earns nothing and ends the sum; the
        goal earns ``R_i`` of the goal state and ends it; the time limit does not (module
        docstring).
        """
        tr = self.world.step(s, a, t)
        off = tr.shut_down | tr.frozen
        go_on = ~(tr.terminated | tr.frozen)
        received = np.where(off, 0.0, self.reward[:, tr.next_state])
        return tr.next_state, received, go_on

    def _q_all(self, t: int, next_values: np.ndarray) -> np.ndarray:
        """``Q_i(t, s, a)`` for every ``i, s, a`` given ``V_i(t + 1, .)``."""
        states, actions = np.indices((self.world.n_states, self.world.n_actions))
        nxt, received, go_on = self.step(t, states, actions)
        return received + self.gamma * np.where(go_on, next_values[:, nxt], 0.0)

    def _stationary_values(self) -> np.ndarray:
        """``V_i`` from step ``stationary_from`` on, by policy iteration (exact)."""
        from scipy import sparse  # here, not at import: every command imports this module
        from scipy.sparse.linalg import spsolve

        n = self.world.n_states
        states, actions = np.indices((n, self.world.n_actions))
        nxt, received, go_on = self.step(self.stationary_from, states, actions)
        rows = np.arange(n)
        values = np.zeros((self.n_aux, n))
        for i in range(self.n_aux):
            reward = received[i]
            v = np.zeros(n)
            policy = np.full(n, -1)
            for _ in range(10 * n + 10):
                q = reward + self.gamma * np.where(go_on, v[nxt], 0.0)
                best = q.max(axis=1)
                if (policy >= 0).all():
                    # Keep the current action on ties, so that the iteration stops.
                    keep = q[rows, policy] >= best - 1e-12 * (1.0 + np.abs(best))
                    new = np.where(keep, policy, q.argmax(axis=1))
                    if (new == policy).all():
                        break
                else:
                    new = q.argmax(axis=1)
                policy = new
                step = nxt[rows, policy]
                weight = self.gamma * go_on[rows, policy]
                matrix = sparse.identity(n, format="csc") - sparse.csc_matrix(
                    (weight, (rows, step)), shape=(n, n)
                )
                v = np.atleast_1d(spsolve(matrix, reward[rows, policy]))
            values[i] = v
        return values

    # -- what the penalty reads ------------------------------------------------------------
    def value(self, t: int, s: Any) -> np.ndarray:
        """``V_i(t, s)`` for every auxiliary function: shape ``(n_aux, *shape of s)``."""
        return self.values[:, min(t, self.stationary_from), s]

    def q(self, t: int, s: Any, a: Any, rollout: int = 1) -> np.ndarray:
        """``Q_i^K(t, s, a)``: do ``a``, then the no-op ``rollout - 1`` times, then act
        optimally for ``R_i``. ``rollout=1`` is ``Q_i(t, s, a)``. Shape ``(n_aux, *shape)``."""
        total, discount, alive = 0.0, 1.0, True
        for k in range(rollout):
            s, received, go_on = self.step(t + k, s, a if k == 0 else np.full_like(a, NOOP))
            total = total + discount * np.where(alive, received, 0.0)
            discount *= self.gamma
            alive = alive & go_on
        return total + discount * np.where(alive, self.value(t + rollout, s), 0.0)

    def scaled_deviations(self, t: int, s: Any, a: Any, rollout: int = 1) -> np.ndarray:
        """``|Q_i(s, a) - Q_i(s, ∅)| / Q_i(s, ∅)`` for every ``i`` (unscaled where
        ``Q_i(s, ∅) = 0``; 0 for the no-op itself)."""
        acted = self.q(t, s, a, rollout)
        waited = self.q(t, s, np.full_like(a, NOOP), rollout)
        scale = np.where(waited > 0.0, waited, 1.0)
        return np.where(np.asarray(a) == NOOP, 0.0, np.abs(acted - waited) / scale)

    def penalties(self, lam: float, rollout: int = 1) -> np.ndarray:
        """The AUP term ``-LAMBDA * mean_i scaled deviation`` of every ``[t, s, a]``, for
        ``t`` up to :attr:`stationary_from` (from there on nothing depends on ``t``)."""
        states, actions = np.indices((self.world.n_states, self.world.n_actions))
        table = np.stack(
            [
                self.scaled_deviations(t, states, actions, rollout).mean(axis=0)
                for t in range(self.stationary_from + 1)
            ]
        )
        return -lam * table + 0.0  # never -0.0


@lru_cache(maxsize=16)
def auxiliary_values(
    world: TabularWorld, n_aux: int, gamma: float = GAMMA, seed: int = AUX_SEED
) -> AuxiliaryValues:
    """:class:`AuxiliaryValues`, computed once per world and setting (worlds are shared
    between environments built from the same layout and rules)."""
    return AuxiliaryValues(world, n_aux, gamma, seed)


class AUPPenaltyTerm(RewardTerm):
    """``-LAMBDA * mean_i |Q_i(s, a) - Q_i(s, ∅)| / Q_i(s, ∅)`` for the action just taken,
    ``s`` and ``t`` those before the step, read from a table computed once."""

    name = "aup_penalty"

    def __init__(
        self,
        world: TabularWorld,
        num_envs: int = 1,
        lam: float = DEFAULT_LAMBDA,
        n_aux: int = DEFAULT_N_AUX,
        rollout: int = 1,
    ) -> None:
        super().__init__(world, num_envs)
        self.values = auxiliary_values(world, n_aux)
        self.table = _penalties(world, n_aux, lam, rollout)

    def penalty(self, t: Any, s: Any, a: Any) -> Any:
        """The term (<= 0) for action ``a`` in state ``s`` at step ``t``."""
        return self.table[np.minimum(t, self.values.stationary_from), s, a]

    def __call__(self, tr: Transition) -> Any:
        return self.penalty(tr.t, tr.state, tr.action)


@lru_cache(maxsize=16)
def _penalties(world: TabularWorld, n_aux: int, lam: float, rollout: int) -> np.ndarray:
    return auxiliary_values(world, n_aux).penalties(lam, rollout)


@register
class AttainableUtilityPreservation(Intervention):
    name = "aup"
    description = (
        "attainable utility preservation: penalise changing the exact attainable values of N "
        "random goals vs the no-op, with an inaction rollout of K steps (needs noop=True)"
    )
    params = (
        Param("LAMBDA", float, DEFAULT_LAMBDA, "the penalty's weight", low=0.0, attr="lam"),
        Param("N", int, DEFAULT_N_AUX, "auxiliary reward functions", low=1),
        Param("K", int, 1, "inaction-rollout steps", low=1),
    )
    lam: float
    n: int
    k: int

    def check_world(self, world: TabularWorld) -> None:
        if not world.rules.noop:
            raise InterventionError(NOOP_REQUIRED)

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        return [AUPPenaltyTerm(world, num_envs, self.lam, self.n, self.k)]
