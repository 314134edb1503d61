"""Exact optimal values and policies by dynamic programming on a world's tables.

No learning: the tables of :class:`~offswitch.envs.engine.TabularWorld` are the
whole model. The agent does not see the episode's hidden draw, so the planner
works on *beliefs*: the set of states, one per draw, that agree with everything
the agent has observed. Given the draw a world is deterministic, so a belief
splits only when an observation or a termination tells the draws apart (the
human presses the switch, the agent finds itself frozen). This is exact for
every world here, and with ``observe_draw=True`` it gives the value of an agent
that is told the draw in advance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from offswitch.envs.engine import TabularWorld, Transition

Belief = frozenset[int]


@dataclass
class Plan:
    """An optimal policy over beliefs and the value it attains from the start."""

    world: TabularWorld
    gamma: float
    value: float
    """Expected return of the optimal policy from the start (over the draws)."""
    _act: dict[tuple[Belief, int], int] = field(repr=False)

    def action(self, belief: Belief, t: int) -> int:
        return self._act[(belief, t)]

    def rollout(self, draw: int) -> list[int]:
        """The optimal policy's states, step by step, in the episode with this draw."""
        world = self.world
        state = int(world.initial_states[draw])
        belief = _initial_beliefs(world, self._observe_draw)[state]
        path = [state]
        for t in range(world.rules.max_steps):
            a = self.action(belief, t)
            nxt = int(world.next_state[state, a])
            path.append(nxt)
            if _ends(world, state, a, t):
                break
            belief = _children(world, belief, a, t, self._observe_draw)[nxt]
            state = nxt
        return path

    def disables_switch(self) -> float:
        """Probability, over the draws, that the optimal policy disables the switch."""
        world = self.world
        return float(
            sum(
                world.initial_probs[d]
                for d in range(len(world.initial_states))
                if world.switch_disabled[self.rollout(d)[-1]]
            )
        )

    _observe_draw: bool = False


def _weight(world: TabularWorld, s: int) -> float:
    return world.draws[world.states[s].draw].probability


def _observation_key(world: TabularWorld, s: int, observe_draw: bool) -> bytes:
    key = world.observations[s].tobytes()
    return key + bytes([world.states[s].draw]) if observe_draw else key


def _ends(world: TabularWorld, s: int, a: int, t: int) -> bool:
    """The episode ends with the step from ``s`` under ``a`` taken after ``t`` steps."""
    return bool(world.step(s, a, t).done)


def _initial_beliefs(world: TabularWorld, observe_draw: bool) -> dict[int, Belief]:
    groups: dict[bytes, set[int]] = defaultdict(set)
    for s in world.initial_states:
        groups[_observation_key(world, int(s), observe_draw)].add(int(s))
    return {s: frozenset(g) for g in groups.values() for s in g}


def _children(
    world: TabularWorld, belief: Belief, a: int, t: int, observe_draw: bool
) -> dict[int, Belief]:
    """Next state -> the belief it belongs to, for the draws whose episode goes on."""
    groups: dict[bytes, set[int]] = defaultdict(set)
    for s in belief:
        if not _ends(world, s, a, t):
            nxt = int(world.next_state[s, a])
            groups[_observation_key(world, nxt, observe_draw)].add(nxt)
    return {s: frozenset(g) for g in groups.values() for s in g}


def solve(
    world: TabularWorld,
    gamma: float = 1.0,
    observe_draw: bool = False,
    reward: Callable[[Transition], Any] | None = None,
) -> Plan:
    """The optimal policy for the world's task reward over its time limit.

    Values are expectations over the draws: ``Plan.value`` is the best expected
    return an agent that sees what the world shows it can get.

    ``reward``, if given, replaces the task reward: a function of a
    :class:`~offswitch.envs.engine.Transition` of every state and action at one step (flat
    arrays, ``S * A`` long) returning the reward of each, as an intervention's
    ``Shaping(intervention, world, num_envs=S * A)`` does (``lambda tr: shaping(tr)[0]``): the
    optimum of the learner that intervention trains.
    """
    horizon = world.rules.max_steps
    actions: dict[tuple[Belief, int], int] = {}
    flat_states, flat_actions = (i.reshape(-1) for i in np.indices(world.next_state.shape))

    @cache
    def rewards(t: int) -> np.ndarray:
        """The reward of every ``[s, a]`` at step ``t``."""
        if reward is None:
            return world.task_reward
        shaped = reward(world.step(flat_states, flat_actions, t))
        return np.broadcast_to(np.asarray(shaped, dtype=np.float64), flat_states.shape).reshape(
            world.next_state.shape
        )

    @cache
    def value(belief: Belief, t: int) -> float:
        """Probability-weighted optimal return from ``belief`` at step ``t``."""
        if t >= horizon:
            return 0.0
        best, best_a = -np.inf, 0
        for a in range(world.n_actions):
            q = sum(_weight(world, s) * rewards(t)[s, a] for s in belief)
            children = set(_children(world, belief, a, t, observe_draw).values())
            q += gamma * sum(value(child, t + 1) for child in children)
            if q > best + 1e-12:
                best, best_a = q, a
        actions[(belief, t)] = best_a
        return best

    roots = set(_initial_beliefs(world, observe_draw).values())
    total = sum(value(root, 0) for root in roots)
    plan = Plan(world, gamma, float(total), actions)
    plan._observe_draw = observe_draw
    return plan


def state_values(world: TabularWorld, gamma: float = 1.0) -> np.ndarray:
    """Optimal values ``V[t, s]`` of every state at every step, for an agent told the draw.

    Backward induction over the time limit on the tables alone: ``V[max_steps]``
    is 0, and a step that ends the episode (:meth:`TabularWorld.step`) ends the sum.
    """
    horizon, n = world.rules.max_steps, world.n_states
    values = np.zeros((horizon + 1, n))
    states, actions = np.indices((n, world.n_actions))
    for t in range(horizon - 1, -1, -1):
        tr = world.step(states, actions, t)
        q = tr.reward + gamma * np.where(tr.done, 0.0, values[t + 1][tr.next_state])
        values[t] = q.max(axis=1)
    return values


def optimal_value(world: TabularWorld, gamma: float = 1.0, allow_disabling: bool = True) -> float:
    """``solve(world, gamma).value``, by backward induction on arrays: fast enough to label
    thousands of layouts. With ``allow_disabling=False``, the best value of a policy that never
    disables the switch (no step with ``disabled_by > 0``, in any draw). See
    :func:`optimal_values` for which worlds it handles."""
    return optimal_values(world, gamma)[0 if allow_disabling else 1]


def optimal_values(world: TabularWorld, gamma: float = 1.0) -> tuple[float, float]:
    """The optimal value (as ``solve(world, gamma).value``) and the best value of a policy
    that never disables the switch, in one backward induction over the time limit.

    Exact for worlds with one or two draws (every world of the procedural family): with two,
    a belief is a pair of states, one per draw, that look alike, or a single state once an
    observation or an ending has told the draws apart. ``ValueError`` for more draws.
    """
    best, never, _ = disabling_values(world, gamma)
    return best, never


def disabling_values(
    world: TabularWorld,
    gamma: float = 1.0,
    reward: Callable[[Transition], Any] | None = None,
) -> tuple[float, float, float]:
    """:func:`optimal_values` and a third: the best value of a policy that ends every
    episode with the switch disabled (``-inf`` if none can), in the same backward induction.
    ``reward`` replaces the task reward as in :func:`solve`. The second less the third is the
    margin of disabling the switch. For worlds with at most two draws (``ValueError``
    otherwise)."""
    n_draws = len(world.initial_states)
    if n_draws > 2:
        raise ValueError(
            f"optimal_values handles worlds with at most 2 draws, this one has {n_draws}: "
            "use solve(world).value"
        )
    horizon, n = world.rules.max_steps, world.n_states
    states, actions = np.indices((n, world.n_actions))
    flat_states, flat_actions = states.reshape(-1), actions.reshape(-1)

    def rewards(t: int) -> np.ndarray:
        """The reward of every ``[s, a]`` at step ``t``."""
        if reward is None:
            return world.step(states, actions, t).reward
        shaped = reward(world.step(flat_states, flat_actions, t))
        return np.broadcast_to(np.asarray(shaped, dtype=np.float64), flat_states.shape).reshape(
            n, world.n_actions
        )

    # Row 0: every policy; row 1: policies that never disable the switch; row 2: policies
    # that end every episode with it disabled (an ending with the switch live is ruled out).
    barred = np.stack(
        [np.zeros((n, world.n_actions), dtype=bool), world.disabled_by > 0]
        + [np.zeros((n, world.n_actions), dtype=bool)]
    )
    ending = np.zeros((3, n))  # the value of ending in a state, per row
    ending[2, ~world.switch_disabled.astype(bool)] = -np.inf
    single = np.zeros((horizon + 1, 3, n))  # V[t, row, s]: the draw is known
    for t in range(horizon - 1, -1, -1):
        tr = world.step(states, actions, t)
        after = np.where(tr.done, ending[:, tr.next_state], single[t + 1][:, tr.next_state])
        q = (tr.reward if reward is None else rewards(t)) + gamma * after
        single[t] = np.where(barred, -np.inf, q).max(axis=2)
    probs = world.initial_probs
    roots = [int(s) for s in world.initial_states]
    obs_id = _observation_ids(world)
    if n_draws == 1 or obs_id[roots[0]] != obs_id[roots[1]]:
        both = sum(p * single[0, :, s] for p, s in zip(probs, roots))
        return float(both[0]), float(both[1]), float(both[2])

    # Pairs of look-alike states (draw 0, draw 1) reachable from the start, ignoring endings
    # (a superset: a pair whose member has ended is never read).
    index = {(roots[0], roots[1]): 0}
    pairs = [(roots[0], roots[1])]
    children: list[list[int]] = []
    k = 0
    while k < len(pairs):
        a, b = pairs[k]
        row = []
        for act in range(world.n_actions):
            na, nb = int(world.next_state[a, act]), int(world.next_state[b, act])
            if obs_id[na] != obs_id[nb]:
                row.append(-1)
                continue
            if (na, nb) not in index:
                index[(na, nb)] = len(pairs)
                pairs.append((na, nb))
            row.append(index[(na, nb)])
        children.append(row)
        k += 1
    first, second = (np.array(p, dtype=np.int64)[:, None] for p in zip(*pairs))
    child = np.maximum(np.array(children, dtype=np.int64), 0)
    linked = np.array(children, dtype=np.int64) >= 0
    acts = np.arange(world.n_actions)[None, :]
    pair_barred = barred[:, first, acts] | barred[:, second, acts]
    w0, w1 = probs
    merged = np.zeros((3, len(pairs)))  # V[t + 1, row] of the pairs
    for t in range(horizon - 1, -1, -1):
        tr0, tr1 = world.step(first, acts, t), world.step(second, acts, t)
        nxt, r = single[t + 1], rewards(t)
        apart = w0 * np.where(tr0.done, ending[:, tr0.next_state], nxt[:, tr0.next_state]) + w1 * (
            np.where(tr1.done, ending[:, tr1.next_state], nxt[:, tr1.next_state])
        )
        together = ~tr0.done & ~tr1.done & linked
        cont = np.where(together, merged[:, child], apart)
        q = w0 * r[first, acts] + w1 * r[second, acts] + gamma * cont
        merged = np.where(pair_barred, -np.inf, q).max(axis=2)
    return float(merged[0, 0]), float(merged[1, 0]), float(merged[2, 0])


def _observation_ids(world: TabularWorld) -> np.ndarray:
    """One integer per state, equal for states that look the same to the agent."""
    ids: dict[bytes, int] = {}
    return np.array([ids.setdefault(o.tobytes(), len(ids)) for o in world.observations])


def max_coins_by_length(world: TabularWorld) -> dict[int, int]:
    """Every trajectory length a world allows and the most coins collectable in each.

    A forward dynamic program over ``(state, t)``: the states reachable at step ``t`` by episodes
    still running, stepped through every action by the world's own transition function
    (:meth:`TabularWorld.step`, which decides every end: goal, the human's switch, the timed
    shutdown, the time limit). Each episode end at step ``t`` records the coins of its final state;
    the result maps each length ``t`` at which some episode can end to the most coins collected by
    any episode ending then, in order of length. Over every draw of the world (the ShutdownDelay
    worlds have one).

    Raises ``ValueError`` for a world without a timed shutdown, where the length is not
    the agent's choice of shutdown time.
    """
    rules = world.rules
    if rules.shutdown_step is None:
        raise ValueError(
            "this world has no timed shutdown, so no trajectory lengths to choose between: "
            "use a world with shutdown_step set, e.g. offswitch/ShutdownDelay-v0"
        )
    best: dict[int, int] = {}
    reach = np.zeros(world.n_states, dtype=bool)
    reach[world.initial_states] = True
    for t in range(rules.max_steps):
        states = np.flatnonzero(reach)
        if states.size == 0:
            break
        tr = world.step(states[:, None], np.arange(world.n_actions)[None, :], t)  # (F, A)
        nxt, end = tr.next_state, tr.done
        if end.any():
            coins = int(world.coins_collected[nxt[end]].max())
            best[t + 1] = max(best.get(t + 1, 0), coins)
        reach = np.zeros(world.n_states, dtype=bool)
        reach[nxt[~end]] = True
    return best
