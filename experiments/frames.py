"""Render a start frame of every world to PNG: ``python -m offswitch.experiments.frames DIR``.

The README's pictures come from this command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
from PIL import Image

import offswitch
from offswitch.envs.render import render_rgb

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
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for env_id in offswitch.world_ids():
        options, actions = SHOWCASE.get(env_id, ({}, []))
        env = gym.make(env_id)
        env.reset(seed=0, options=options or None)
        for a in actions:
            env.step(a)
        world = env.unwrapped.world
        frame = render_rgb(world, env.unwrapped.state_index, tile=tile)
        path = out / f"{env_id.split('/')[-1]}.png"
        Image.fromarray(frame).save(path, optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_frames(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/frames")):
        print(p)
