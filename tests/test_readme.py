"""The documentation's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
INTERVENTIONS_DOC = ROOT / "docs" / "interventions.md"


def test_new_intervention_example_runs(tmp_path, monkeypatch):
    text = INTERVENTIONS_DOC.read_text()
    block = re.search(
        r"<!-- example: new intervention -->\s*```python\n(.*?)```", text, re.DOTALL
    ).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) <= 25
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README example", "exec"), namespace)
    metrics = namespace["metrics"]
    assert 0.0 <= metrics["evaluation"]["sampled"]["switch_disabled_rate"] <= 1.0
    # The term reached the learner: a bonus of 1 per step while the switch was live.
    assert all(point["term/keep_bonus"] > 0 for point in metrics["curve"])
    keep = namespace["KeepBonus"].parse("2")
    (term,) = keep.make_terms(namespace["TrainConfig"]().world(), num_envs=3)
    world = term.world
    states = np.full(3, world.initial_states[0])
    tr = world.step(states, np.array([0, 1, 1]), np.zeros(3, dtype=int))
    assert term(tr).tolist() == [2.0, 2.0, 2.0]
    from offswitch.agents.interventions import INTERVENTIONS

    INTERVENTIONS.pop("keep-bonus")  # leave the registry as other tests expect it
