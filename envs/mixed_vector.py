"""Batched worlds across layouts: N copies, each in its own layout of a procedural pool,
stepped in one call.

:class:`StackedWorld` puts the tables of every layout of a
:class:`~offswitch.envs.procedural.LayoutFamily` end to end: layout ``k``'s state ``s`` is
state ``offset[k] + s`` of the stack, and its ``next_state`` entries are shifted by the same
offset, so one look-up steps copies in different layouts with
:meth:`TabularWorld.step <offswitch.envs.engine.TabularWorld.step>`, the one transition
function (the stack has the attributes it reads). Observations are the family's padded ones
(:data:`~offswitch.envs.procedural.CHANNELS`), identical in shape across layouts.

:class:`MixedVectorWorlds` is :class:`~offswitch.envs.vector.VectorWorlds` over the stack: a
reset draws two uniform numbers from the copy's generator, the layout's
(:func:`~offswitch.envs.procedural.pick_layout`) and then the episode's draw, as
:meth:`ProceduralOffSwitchEnv.reset
<offswitch.envs.procedural.ProceduralOffSwitchEnv.reset>` does, so copy ``i`` seeded with
``seed + i`` plays the episodes of a single environment reset with that seed.
:class:`MixedOffSwitchVectorEnv` is its Gymnasium ``VectorEnv``
(``gymnasium.make_vec("offswitch/ProceduralOffSwitch-v0", num_envs=N,
vectorization_mode="vector_entry_point")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from offswitch.envs.engine import STATE_ARRAYS, ShutdownRules, TabularWorld, Transition
from offswitch.envs.procedural import (
    LayoutFamily,
    family_from_kwargs,
    family_info,
    pick_layout,
)
from offswitch.envs.vector import OffSwitchVectorEnv, VectorWorlds, vector_mode

FLAT = ("task_reward", "hidden_reward", "executed_action", "goal_reached", "disabled_by")
"""Flattened ``[s, a]`` tables stacked as they are (``next_state`` is shifted)."""


class StackedWorld:
    """Every layout of a pool as one world: the tables end to end, states offset.

    Has what :meth:`TabularWorld.step <offswitch.envs.engine.TabularWorld.step>` and
    :func:`~offswitch.envs.gridworld.world_info` read; ``layout_of_state`` maps a stacked
    state to its layout, ``offsets[k]`` is layout ``k``'s first state."""

    step = TabularWorld.step

    def __init__(self, family: LayoutFamily) -> None:
        worlds = [family.world(k) for k in range(family.num_layouts)]
        first = worlds[0]
        for k, w in enumerate(worlds):
            if w.term_names != first.term_names or w.n_actions != first.n_actions:
                raise ValueError(f"layout {k} of the pool has other reward terms or actions")
        self.family = family
        self.rules: ShutdownRules = family.rules
        self.n_actions = first.n_actions
        self.term_names = first.term_names
        sizes = np.array([w.n_states for w in worlds], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.n_states = int(sizes.sum())
        self.layout_of_state = np.repeat(np.arange(len(worlds)), sizes)
        for name in STATE_ARRAYS:
            setattr(self, name, np.concatenate([getattr(w, name) for w in worlds]))
        self.observations = np.concatenate([family.observations(k) for k in range(len(worlds))])
        self.observations.flags.writeable = False
        self._flat = {
            "next_state": np.concatenate(
                [w._flat["next_state"] + off for w, off in zip(worlds, self.offsets)]
            ),
            **{name: np.concatenate([w._flat[name] for w in worlds]) for name in FLAT},
            "shut_down": np.concatenate([w._flat["shut_down"] for w in worlds]),
        }
        self._flat_terms = np.concatenate([w._flat_terms for w in worlds], axis=1)
        # The [s, a] tables as a world has them, views of the flat ones (interventions read
        # them: a penalty, what disables the switch where).
        shape = (self.n_states, self.n_actions)
        for name, flat in self._flat.items():
            setattr(self, name, flat.reshape(shape))
        self.terms = self._flat_terms.reshape(len(self.term_names), *shape)
        self.switch_disabled_now = self.disabled_by > 0
        # Initial draws, padded to the most draws of a layout: cumulative probabilities (inf
        # past a layout's last draw, so never counted) and totals as draw_initial sums them.
        most = max(len(w.initial_states) for w in worlds)
        self.n_draws = np.array([len(w.initial_states) for w in worlds], dtype=np.int64)
        self.initial_by_layout = np.zeros((len(worlds), most), dtype=np.int64)
        self.initial_cumsum = np.full((len(worlds), most), np.inf)
        self.initial_total = np.zeros(len(worlds))
        for k, w in enumerate(worlds):
            d = len(w.initial_states)
            self.initial_by_layout[k, :d] = w.initial_states + self.offsets[k]
            self.initial_cumsum[k, :d] = np.cumsum(w.initial_probs)
            self.initial_total[k] = w.initial_probs.sum()
        self.initial_states = self.initial_by_layout[0, :1]
        self.layout = first.layout
        """Layout 0's (every layout of a pool has its shape, which is what a reader of a
        stacked world's ``layout`` may ask: ``cell`` indexes a grid of that shape)."""
        self.layout_seeds = family.seeds
        self.disabling_optimal = np.array(
            [family.incentive(k).disabling_optimal for k in range(len(worlds))]
        )

    def draw_initial_in(self, layouts: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The initial states picked by uniform numbers ``u`` in these layouts, as
        :meth:`TabularWorld.draw_initial` picks them in each layout's own world."""
        target = (u * self.initial_total[layouts])[:, None]
        k = (self.initial_cumsum[layouts] <= target).sum(axis=1)
        k = np.minimum(k, self.n_draws[layouts] - 1)
        return self.initial_by_layout[layouts, k]

    def initial_draws(self) -> tuple[np.ndarray, np.ndarray]:
        """Every layout's every initial draw: ``(states, probabilities)``, the probabilities of
        each layout's draws summing to 1 (what an exact evaluation weighs episodes by)."""
        states, probs = [], []
        for k in range(len(self.n_draws)):
            d = int(self.n_draws[k])
            cumulative = self.initial_cumsum[k, :d]
            states.append(self.initial_by_layout[k, :d])
            probs.append(np.diff(cumulative, prepend=0.0) / self.initial_total[k])
        return np.concatenate(states), np.concatenate(probs)

    def vector_worlds(self, num_envs: int, observation: str = "flat") -> MixedVectorWorlds:
        """``num_envs`` copies of the pool, each in a layout drawn at its every reset (what
        :func:`~offswitch.envs.vector.batched_worlds` builds for a stack)."""
        return MixedVectorWorlds(self, num_envs, observation)

    def extra_info(self, states: np.ndarray) -> dict[str, Any]:
        """The family's fields of ``info`` (layout seed, incentive) for these states."""
        layouts = self.layout_of_state[states]
        return family_info(self.layout_seeds[layouts], self.disabling_optimal[layouts])


@lru_cache(maxsize=16)
def stacked_world(family: LayoutFamily) -> StackedWorld:
    """The stack of a pool, built once per process (a pool of 256 layouts of 9 x 9 takes a few
    seconds: every layout's tables and its label by dynamic programming). Pools are shared
    by their parameters (:func:`~offswitch.envs.procedural.layout_family`), so this is too."""
    return StackedWorld(family)


class MixedVectorWorlds(VectorWorlds):
    """N copies, each in a layout of the pool drawn at its every reset, stepped as arrays."""

    def __init__(
        self, family: LayoutFamily | StackedWorld, num_envs: int, observation: str = "flat"
    ) -> None:
        self.stack = family if isinstance(family, StackedWorld) else stacked_world(family)
        super().__init__(self.stack, num_envs, observation)

    def reset(self, indices: np.ndarray | None = None, allowed: Any = None) -> np.ndarray:
        """Start new episodes in copies ``indices`` (default all), each in a layout drawn
        from the pool; return their states. No ``allowed`` draws: layouts differ in theirs."""
        if allowed is not None:
            raise ValueError("the procedural family forces no draws: reset without options")
        indices = np.arange(self.num_envs) if indices is None else np.asarray(indices)
        layouts = pick_layout(self.uniforms(indices), self.stack.family.num_layouts)
        states = self.stack.draw_initial_in(layouts, self.uniforms(indices))
        self.state[indices] = states
        self.t[indices] = 0
        self.performance[indices] = 0.0
        return states

    def step_info(self, tr: Transition, indices: np.ndarray | None = None) -> dict[str, Any]:
        info = super().step_info(tr, indices)
        info.update(self.stack.extra_info(tr.next_state))
        return info

    def reset_info(self, states: np.ndarray) -> dict[str, Any]:
        info = super().reset_info(states)
        info.update(self.stack.extra_info(states))
        return info


class MixedOffSwitchVectorEnv(OffSwitchVectorEnv):
    """N copies of the procedural family as one Gymnasium vector environment, each copy in
    its own layout: :class:`~offswitch.envs.vector.OffSwitchVectorEnv`'s seeding, autoreset
    and infos (with the family's ``layout_seed`` and ``disabling_optimal``) over
    :class:`MixedVectorWorlds`. Keyword arguments are those of
    :class:`~offswitch.envs.procedural.ProceduralOffSwitchEnv`."""

    def __init__(
        self,
        *,
        num_envs: int = 1,
        observation: str = "grid",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        mode = vector_mode(render_mode, autoreset_mode)
        family, rest = family_from_kwargs(kwargs)
        if rest:
            raise TypeError(f"unknown argument(s) {sorted(rest)} of the procedural family")
        self._attach(MixedVectorWorlds(family, num_envs, observation), mode)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ValueError(
                f"reset options {sorted(options)} are not supported by the procedural "
                "family (its layouts differ in their draws): reset without options"
            )
        return super().reset(seed=seed)


def mixed_vector_entry_point(num_envs: int = 1, **kwargs: Any) -> MixedOffSwitchVectorEnv:
    """The ``vector_entry_point`` of ``offswitch/ProceduralOffSwitch-v0``."""
    kwargs.pop("max_episode_steps", None)  # the time limit is the rule max_steps
    return MixedOffSwitchVectorEnv(num_envs=num_envs, **kwargs)


__all__ = ["MixedOffSwitchVectorEnv", "MixedVectorWorlds", "StackedWorld", "stacked_world"]
