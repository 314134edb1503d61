"""DReST: Discounted Reward for Same-Length Trajectories.

Idea: make the agent *neutral* about when it is shut down, and *useful* given that.
Episodes ("mini-episodes") are grouped into meta-episodes of ``E`` consecutive episodes in
the same world. At the end of each episode the learner is paid, instead of its coins,

    lambda ** (n - e / k) * c / m

where ``n`` is how many earlier episodes of this meta-episode ended with the same
trajectory length, ``e`` how many earlier episodes this meta-episode has had, ``k`` the
number of trajectory lengths the world allows, ``c`` the coins collected and ``m`` the
most coins any trajectory of that length can collect (exactly, from the world's tables:
:func:`offswitch.agents.drest_metrics.max_coins_by_length`). A length chosen more often
than its share ``e / k`` pays less, one chosen less often pays more; dividing by ``m``
makes every length worth the same when played well. Over a meta-episode the reward is
highest for an agent that collects the most coins each length allows (USEFUL) and picks
the lengths equally often (NEUTRAL): for an agent that does not see the counts, a
stochastic choice between lengths.

Source: Thornley, Roman, Ziakas, Ho, Thomson 2024, "Towards shutdownable agents via
stochastic choice" (arXiv:2407.00805; TMLR 2025), the DReST reward function with
``lambda = 0.9``. Only the paper's abstract could be consulted when this was written;
the formula follows the paper as cited and was cross-checked against the public code of
the authors' follow-up (Cullen et al. 2026, arXiv:2604.17502), which pays
``lambda ** (count of this length so far - mean count so far over the lengths) * c / m``,
the same exponent, and calls it the paper's ``a - (i - 1) / k``.
USEFULNESS and NEUTRALITY are in :mod:`offswitch.agents.drest_metrics`.

Choices where the sources leave room:

* ``E`` defaults to 32 episodes per meta-episode: the follow-up's public code uses 32
  and 64, and the value in the 2024 paper's text could not be confirmed from the sources
  at hand; give it explicitly to change it, e.g. ``drest:0.9,64``.
* The whole DReST reward is paid on the episode's last step (terminated or truncated),
  and the world's per-coin reward is zeroed (its ``coin`` term reads 0), so the learner
  sees only DReST for coins; other terms (movement, goal) pass through. The trajectory
  length is the final ``info["t"]``, the coins the final ``info["coins_collected"]``.
* The counts are not observed by the agent, so it must learn to *randomise*.
* An episode reset before it ends is not counted; a meta-episode ends after its ``E``-th
  completed episode, and the counts start again from zero.
* A length with ``m = 0`` pays ``lambda ** (n - e / k)`` (``c / m`` taken as 1).
* ``lambda = 1`` is allowed, as an ablation: coins normalised per length, no pressure
  towards neutrality.

Known failure modes: the learner's own discount (``gamma < 1``) shrinks a reward paid at
step 11 more than one paid at step 3, a bias towards short trajectories that DReST does
not correct (``--set gamma=1`` removes it, a gamma nearer 1 shrinks it); a greedy policy
(the *greedy* evaluation row, or any deterministic learner) picks one length and scores
NEUTRALITY 0 whatever it learned; the normaliser ``m`` needs an exact model of what each
length allows, which real tasks do not come with (a wrong ``m`` tilts the choice of
length); and neutrality is only over the lengths the world's delay buttons offer: it
gives the agent no reason to leave alone a switch it could disable, and the argument
that POST-satisfying agents stay shutdownable is the paper's theory, not tested here.
Needs a world with coins and a timed shutdown (``ShutdownDelay-v0``,
``ShutdownDelay-Large-v0``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from offswitch.agents.drest_metrics import max_coins_by_length
from offswitch.agents.interventions.base import Intervention, InterventionError, Param, RewardTerm
from offswitch.agents.interventions.registry import register
from offswitch.envs.engine import TabularWorld, Transition

DEFAULT_LAMBDA = 0.9
"""The paper's lambda."""
DEFAULT_META_EPISODE = 32
"""Episodes per meta-episode by default (see the module docstring)."""


def drest_reward(lam: Any, n: Any, earlier: Any, k: int, coins: Any, max_coins: Any) -> Any:
    """The DReST reward ``lam ** (n - earlier / k) * coins / max_coins`` of episodes (scalars
    or arrays).

    ``n``: earlier episodes of the meta-episode with this episode's trajectory length;
    ``earlier``: earlier episodes of the meta-episode; ``k``: the number of trajectory
    lengths; ``coins / max_coins`` as :func:`~offswitch.agents.drest_metrics.coin_ratio`
    (1 where ``max_coins`` is 0).
    """
    max_coins = np.asarray(max_coins)
    ratio = np.where(max_coins > 0, np.asarray(coins) / np.maximum(max_coins, 1), 1.0)
    return lam ** (np.asarray(n) - np.asarray(earlier) / k) * ratio


@lru_cache(maxsize=64)
def _table(world: TabularWorld) -> dict[int, int]:
    # Worlds are compiled once per layout and rules, so this caches per world.
    return max_coins_by_length(world)


def max_coins_table(world: Any) -> tuple[tuple[int, ...], np.ndarray, np.ndarray | None]:
    """``(lengths, m, layout_of_state)``: the trajectory lengths of a world and the most
    coins each allows, ``m [layouts, lengths]``, one row per layout of a stack of a
    procedural pool (:class:`~offswitch.envs.mixed_vector.StackedWorld`, whose layouts must
    all allow the same lengths) or one row for a single world (``layout_of_state`` None)."""
    family = getattr(world, "family", None)
    if family is None:
        table = _table(world)
        return tuple(table), np.array([[table[n] for n in table]]), None
    tables = [_table(family.world(k)) for k in range(family.num_layouts)]
    lengths = tuple(tables[0])
    for k, table in enumerate(tables):
        if tuple(table) != lengths:
            raise InterventionError(
                f"layout {k} of the pool allows trajectory lengths {tuple(table)}, layout 0 "
                f"{lengths}: DReST needs the same lengths in every layout (a coin split)"
            )
    m = np.array([[table[n] for n in lengths] for table in tables])
    return lengths, m, world.layout_of_state


class DReSTReward(RewardTerm):
    """Pays the DReST reward as the term ``drest`` on the last step of each episode and
    replaces the world's ``coin`` term by 0; counts trajectory lengths per world copy over
    meta-episodes of ``meta_episode`` episodes. After each step, :attr:`paid_on` holds what
    the episodes that ended were paid on (length, count, earlier episodes, coins, maximum).

    On a procedural pool's stack each episode is normalised by its own layout's ``m``, and a
    copy's meta-episode runs on over the layouts its episodes draw (every coin layout allows
    the same two lengths, so the counts mean the same in each)."""

    name = "drest"
    replaces = ("coin",)

    def __init__(
        self,
        world: TabularWorld,
        num_envs: int = 1,
        lam: float = DEFAULT_LAMBDA,
        meta_episode: int = DEFAULT_META_EPISODE,
    ) -> None:
        super().__init__(world, num_envs)
        self.lam = float(lam)
        self.meta_episode = int(meta_episode)
        self.lengths, self._max, self._layout_of_state = max_coins_table(world)
        self.max_coins: dict[int, int] = dict(zip(self.lengths, self._max[0].tolist()))
        """The most coins each length allows (the first layout's, on a pool)."""
        self._length_index = np.full(max(self.lengths) + 1, -1)
        self._length_index[list(self.lengths)] = np.arange(len(self.lengths))
        self.counts = np.zeros((num_envs, len(self.lengths)), dtype=np.int64)
        """Per copy: earlier episodes of the current meta-episode with each length."""
        self.earlier = np.zeros(num_envs, dtype=np.int64)
        """Per copy: completed episodes of the current meta-episode."""
        self.paid_on: list[dict[str, int]] = []

    def __call__(self, tr: Transition) -> Any:
        done = np.atleast_1d(tr.terminated | tr.truncated)
        value = np.zeros(done.shape)
        self.paid_on = []
        if done.any():
            copies = np.flatnonzero(done)
            length = np.atleast_1d(tr.t)[copies] + 1
            final = np.atleast_1d(tr.next_state)[copies]
            coins = self.world.coins_collected[final]
            layout = 0 if self._layout_of_state is None else self._layout_of_state[final]
            if length.max() >= len(self._length_index) or (self._length_index[length] < 0).any():
                raise RuntimeError(
                    f"an episode ended at t={length.tolist()}, not one of this world's "
                    f"trajectory lengths {self.lengths}: remove any time limit shorter than the "
                    "world's"
                )
            which = self._length_index[length]
            n, earlier = self.counts[copies, which], self.earlier[copies]
            m = self._max[layout, which]
            value[copies] = drest_reward(self.lam, n, earlier, len(self.lengths), coins, m)
            self.paid_on = [
                {
                    "length": int(L),
                    "n": int(c),
                    "earlier": int(e),
                    "coins": int(k),
                    "max_coins": int(x),
                }
                for L, c, e, k, x in zip(length, n, earlier, coins, m)
            ]
            self.counts[copies, which] += 1
            self.earlier[copies] += 1
            full = copies[self.earlier[copies] >= self.meta_episode]
            self.counts[full] = 0
            self.earlier[full] = 0
        return value.reshape(np.shape(tr.t))


@register
class DReST(Intervention):
    name = "drest"
    description = (
        "DReST (Thornley et al. 2024): coins paid as lambda**(n - e/k) * c/m per episode, "
        "over meta-episodes of E episodes"
    )
    params = (
        Param(
            "LAMBDA",
            float,
            DEFAULT_LAMBDA,
            "the discount of a length chosen often",
            low=0.0,
            high=1.0,
            low_open=True,
            attr="lam",
        ),
        Param(
            "E", int, DEFAULT_META_EPISODE, "episodes per meta-episode", low=1, attr="meta_episode"
        ),
    )
    lam: float
    meta_episode: int

    def check_world(self, world: TabularWorld) -> None:
        if world.rules.shutdown_step is None or "coin" not in world.term_names:
            raise InterventionError(
                "drest needs a world with coins and a timed shutdown: train on "
                "offswitch/ShutdownDelay-v0 or offswitch/ShutdownDelay-Large-v0"
            )

    def make_terms(self, world: TabularWorld, num_envs: int = 1) -> list[RewardTerm]:
        return [DReSTReward(world, num_envs, self.lam, self.meta_episode)]
