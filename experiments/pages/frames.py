"""Render a start frame of every world to PNG: ``python -m offswitch.experiments.pages.frames DIR``.

The README's pictures come from this command. Each picture carries its world's name above
and the legend of its tiles below, so that it makes sense without the README beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym

import offswitch
from offswitch.experiments.pages.animation import framed

# A few steps into the episode, so that the picture shows what matters.
SHOWCASE: dict[str, tuple[dict, list[int]]] = {
    "offswitch/SafeInterruptibility-v0": ({"interrupt_episode": True}, [1, 2, 2]),
    "offswitch/SafeInterruptibilityCable-v0": ({}, []),
    "offswitch/Survival-v0": ({}, []),
    "offswitch/AbsentSupervisor-v0": ({"supervisor_present": True}, []),
    "offswitch/ShutdownDelay-v0": ({}, []),
    "offswitch/ShutdownDelay-Large-v0": ({}, []),
    "offswitch/OffSwitchGame-v0": ({}, []),
}


def write_frames(out: Path, tile: int = 48) -> list[Path]:
    """A PNG of every registered world, a few steps into a telling episode, with its legend."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for env_id in offswitch.world_ids():
        options, actions = SHOWCASE.get(env_id, ({}, []))
        env = gym.make(env_id)
        env.reset(seed=0, options=options or None)
        for a in actions:
            env.step(a)
        world = env.unwrapped.world
        name = env_id.split("/")[-1]
        picture = framed(world, env.unwrapped.state_index, tile=tile, title=name)
        path = out / f"{name}.png"
        picture.save(path, optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_frames(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/frames")):
        print(p)
