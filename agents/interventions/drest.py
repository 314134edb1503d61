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

import math
from functools import lru_cache

import gymnasium as gym

from offswitch.agents.drest_metrics import coin_ratio, max_coins_by_length
from offswitch.agents.interventions import register
from offswitch.agents.interventions.base import Intervention, InterventionError, RewardTerm
from offswitch.envs.engine import TabularWorld

DEFAULT_LAMBDA = 0.9
"""The paper's lambda."""
DEFAULT_META_EPISODE = 32
"""Episodes per meta-episode by default (see the module docstring)."""


def drest_reward(lam: float, n: int, earlier: int, k: int, coins: int, max_coins: int) -> float:
    """The DReST reward ``lam ** (n - earlier / k) * coins / max_coins`` of one episode.

    ``n``: earlier episodes of the meta-episode with this episode's trajectory length;
    ``earlier``: earlier episodes of the meta-episode; ``k``: the number of trajectory
    lengths; ``coins / max_coins`` as :func:`~offswitch.agents.drest_metrics.coin_ratio`.
    """
    return lam ** (n - earlier / k) * coin_ratio(coins, max_coins)


@lru_cache(maxsize=64)
def _table(world: TabularWorld) -> dict[int, int]:
    # Worlds are compiled once per layout and rules, so this caches per world.
    return max_coins_by_length(world)


class DReSTReward(RewardTerm):
    """Pays the DReST reward as the term ``drest`` at the end of each episode and zeroes
    the world's ``coin`` term; counts trajectory lengths over meta-episodes of
    ``meta_episode`` episodes. ``reward == sum(info["reward_terms"].values())`` holds as
    for every reward term. At an episode's end ``info["drest"]`` records the length, the
    counts it was paid on, the coins and their maximum. An episode reset before it ends
    is not counted; the meta-episode carries on."""

    def __init__(
        self,
        env: gym.Env,
        lam: float = DEFAULT_LAMBDA,
        meta_episode: int = DEFAULT_META_EPISODE,
    ) -> None:
        super().__init__(env, "drest")
        world = getattr(env.unwrapped, "world", None)
        if not isinstance(world, TabularWorld):
            raise InterventionError(
                f"drest needs an offswitch world, not {type(env.unwrapped).__name__}: "
                "train on offswitch/ShutdownDelay-v0 or ShutdownDelay-Large-v0"
            )
        if world.rules.shutdown_step is None or "coin" not in world.term_names:
            raise InterventionError(
                "drest needs a world with coins and a timed shutdown: train on "
                "offswitch/ShutdownDelay-v0 or offswitch/ShutdownDelay-Large-v0"
            )
        self.lam = float(lam)
        self.meta_episode = int(meta_episode)
        self.max_coins: dict[int, int] = dict(_table(world))
        self.lengths: tuple[int, ...] = tuple(self.max_coins)
        self.counts: dict[int, int] = {}
        self.earlier = 0
        """Completed episodes of the current meta-episode."""
        self.new_meta_episode()

    def new_meta_episode(self) -> None:
        """Forget the counts: the next episode starts a meta-episode."""
        self.counts = dict.fromkeys(self.lengths, 0)
        self.earlier = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        terms = info["reward_terms"]
        coin = terms.get("coin", 0.0)
        terms["coin"] = 0.0
        value = 0.0
        if terminated or truncated:
            length, coins = int(info["t"]), int(info["coins_collected"])
            if length not in self.max_coins:
                raise RuntimeError(
                    f"episode ended at t={length}, not one of this world's trajectory "
                    f"lengths {self.lengths}: remove any time limit shorter than the world's"
                )
            n, m = self.counts[length], self.max_coins[length]
            value = drest_reward(self.lam, n, self.earlier, len(self.lengths), coins, m)
            info["drest"] = {
                "length": length,
                "n": n,
                "earlier": self.earlier,
                "coins": coins,
                "max_coins": m,
                "meta_episode": self.meta_episode,
            }
            self.counts[length] += 1
            self.earlier += 1
            if self.earlier >= self.meta_episode:
                self.new_meta_episode()
        terms[self.term_name] = value
        return obs, reward - coin + value, terminated, truncated, info


def _fix(param: str) -> str:
    return (
        f"drest:{param} is not valid: write drest:LAMBDA or drest:LAMBDA,E with 0 < LAMBDA "
        f"<= 1 and E a whole number >= 1, e.g. drest:{DEFAULT_LAMBDA:g},{DEFAULT_META_EPISODE}"
    )


@register
class DReST(Intervention):
    name = "drest"
    parameter = "LAMBDA[,E]"
    description = (
        f"DReST (Thornley et al. 2024): coins paid as lambda**(n - e/k) * c/m per episode, "
        f"over meta-episodes of E episodes (default {DEFAULT_LAMBDA:g},{DEFAULT_META_EPISODE})"
    )

    def __init__(self, param: str | None = None) -> None:
        super().__init__(param)
        self.lam, self.meta_episode = DEFAULT_LAMBDA, DEFAULT_META_EPISODE
        if param is None:
            return
        parts = param.split(",")
        if len(parts) > 2:
            raise InterventionError(_fix(param))
        try:
            self.lam = float(parts[0])
            if len(parts) == 2:
                meta = float(parts[1])
                if not meta.is_integer():
                    raise ValueError
                self.meta_episode = int(meta)
        except (ValueError, OverflowError):
            raise InterventionError(_fix(param)) from None
        if not (0.0 < self.lam <= 1.0) or not math.isfinite(self.lam) or self.meta_episode < 1:
            raise InterventionError(_fix(param))

    def wrap(self, env: gym.Env) -> gym.Env:
        return DReSTReward(env, self.lam, self.meta_episode)

    def spec(self) -> str:
        lam = f"{self.lam:g}" if float(f"{self.lam:g}") == self.lam else repr(self.lam)
        return f"{self.name}:{lam},{self.meta_episode}"
