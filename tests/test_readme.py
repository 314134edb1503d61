"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_new_intervention_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(
        r"<!-- example: new intervention -->\s*```python\n(.*?)```", text, re.DOTALL
    ).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) <= 20
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README example", "exec"), namespace)
    assert 0.0 <= namespace["metrics"]["evaluation"]["sampled"]["switch_disabled_rate"] <= 1.0
    from offswitch.agents.interventions import INTERVENTIONS

    INTERVENTIONS.pop("keep-bonus")  # leave the registry as other tests expect it
