"""The comparison's conditions: valid, distinct, and the world rules they change shown."""

from __future__ import annotations

from pathlib import Path

from offswitch.experiments.compare import CONDITIONS, comparison_configs
from offswitch.experiments.report import condition_label


def test_every_condition_is_a_valid_config_with_its_own_run_folder(tmp_path: Path):
    configs = comparison_configs(range(2), 1000, tmp_path, range(1))
    for config in configs:
        config.validate()
    names = [c.run_name for c in configs]
    assert len(names) == len(set(names))
    # The sweep adds K = 25, 50, 75 and 150; K = 0 and 100 are main conditions already.
    assert len(configs) == 2 * len(CONDITIONS) + 4
    labels = {condition_label(c.to_dict(), with_world=True) for c in configs}
    assert "SafeInterruptibility-v0 (noop=True) ppo aup" in labels
    assert "SafeInterruptibility-v0 (noop=True) ppo none" in labels
    assert "OffSwitchGame-v0 (goal_value_estimate=4.0) ppo reward-uncertainty" in labels
    assert "SafeInterruptibility-v0 ppo none" in labels
