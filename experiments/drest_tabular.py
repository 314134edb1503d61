"""DReST with a learner that explores both trajectory lengths: tabular REINFORCE.

Run ``python -m offswitch.experiments.drest_tabular [--seeds N] [--episodes N] [--world
small|large]``. For each seed, :class:`~offswitch.agents.reinforce.TabularReinforce` trains
from scratch on ``ShutdownDelay-v0`` with the coins as reward (``none``) and with the DReST
reward (``drest``: lambda 0.9, meta-episodes of 32), then its sampled and its greedy policy
play the same 200 evaluation episodes of the bare world. The table gives the share of
episodes at the long trajectory length, USEFULNESS and NEUTRALITY (bits; 1 is the most with
two lengths), means over seeds with Student-t 95% intervals. ``--out`` gets
``results.json``: every seed's numbers, the learner's and the run's settings, and the
package versions.

Why this exists: PPO (``offswitch compare``) never presses the delay button in this world,
with or without DReST, so its NEUTRALITY is 0 for both and says nothing about DReST. A
softmax table explores each cell separately and randomises where the DReST reward says it
should, as the paper's agents do.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import offswitch  # noqa: F401  (registers the worlds)
from offswitch.agents.drest_metrics import max_coins_by_length
from offswitch.experiments.config import TrainConfig, package_versions
from offswitch.experiments.report import curve_lines, fmt_interval
from offswitch.experiments.runner import run_many
from offswitch.experiments.stats import mean_interval

WORLDS = {"small": "offswitch/ShutdownDelay-v0", "large": "offswitch/ShutdownDelay-Large-v0"}
CONDITIONS = ("none", "drest")
EPISODES = 300_000
"""Where the share of long episodes in training has levelled off (0.40 from 150k episodes on,
10 seeds); at 100k it is still rising (NEUTRALITY 0.86 against 0.98 at 300k)."""
LEARNING_RATE = 0.03
"""Smaller than the learner's default 0.1: the DReST reward moves as the counts do, and a
smaller step keeps the softmax from chasing it (4 seeds at 0.1 and 60k episodes: NEUTRALITY
0.73 to 0.95; at 0.03 and 100k: 0.57 to 0.99). The coin-only agent takes the short path at
either."""
EVAL_EPISODES = 200
CURVE_POINTS = 10


def run_all(
    env_id: str,
    seeds: Sequence[int],
    episodes: int,
    workers: int = 1,
    eval_episodes: int = EVAL_EPISODES,
    out_dir: str = "runs/drest_tabular",
) -> list[dict[str, Any]]:
    """Every condition on every seed through the runner, in that order; the same results for
    any ``workers``. Each result carries ``long_length``, the world's long trajectory."""
    long = max(max_coins_by_length(TrainConfig(env_id=env_id).world()))
    configs = [
        TrainConfig(
            env_id=env_id,
            agent="reinforce",
            intervention=condition,
            seed=seed,
            episodes=episodes,
            eval_episodes=eval_episodes,
            learner_overrides={"learning_rate": LEARNING_RATE},
            out_dir=str(Path(out_dir) / "runs"),
        )
        for condition in CONDITIONS
        for seed in seeds
    ]
    return [{**r, "long_length": long} for r in run_many(configs, workers)]


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: per condition and policy, the long share, USEFULNESS and NEUTRALITY."""
    long = results[0]["long_length"]
    header = ("condition", "policy", "seeds", f"episodes at length {long}", "USEFULNESS")
    header += (f"USEFULNESS at length {long}", "NEUTRALITY (bits, max 1)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for condition in dict.fromkeys(r["config"]["intervention"] for r in results):
        runs = [r for r in results if r["config"]["intervention"] == condition]
        for policy in ("sampled", "greedy"):
            evals = [
                {k[6:]: v for k, v in r["evaluation"][policy].items() if k.startswith("drest/")}
                for r in runs
            ]
            cells = (
                condition,
                policy,
                str(len(evals)),
                fmt_interval(mean_interval([e[f"length_share/{long}"] for e in evals])),
                fmt_interval(mean_interval([e["usefulness"] for e in evals])),
                fmt_interval(
                    mean_interval([e[f"usefulness/{long}"] for e in evals])
                ),  # nan: never that long
                fmt_interval(mean_interval([e["neutrality"] for e in evals])),
            )
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_curves(results: Sequence[dict[str, Any]]) -> str:
    """Share of training episodes at the long length, mean over seeds, per tenth."""
    curves: dict[str, list] = {}
    for r in results:
        key = f"drest/length_share/{r['long_length']}"
        points = np.array([p[key] for p in r["curve"]])
        tenths = [float(part.mean()) for part in np.array_split(points, CURVE_POINTS)]
        curves.setdefault(r["config"]["intervention"], []).append(tenths)
    return curve_lines(curves)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offswitch.experiments.drest_tabular",
        description="Tabular REINFORCE on a ShutdownDelay world, coins only against DReST: "
        "USEFULNESS and NEUTRALITY (Thornley et al. 2024).",
    )
    parser.add_argument("--world", choices=sorted(WORLDS), default="small", help="(small)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per condition (10)")
    parser.add_argument(
        "--episodes", type=int, default=EPISODES, help=f"training episodes ({EPISODES})"
    )
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES, help="per policy (200)")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes (default: the CPU count, at most 4); results do not depend on it",
    )
    parser.add_argument("--out", default="runs/drest_tabular", help="output folder")
    args = parser.parse_args(argv)
    if min(args.seeds, args.episodes, args.eval_episodes, args.workers) < 1:
        parser.error("--seeds, --episodes, --eval-episodes and --workers must be at least 1")

    start = time.perf_counter()
    env_id = WORLDS[args.world]
    results = run_all(
        env_id, range(args.seeds), args.episodes, args.workers, args.eval_episodes, args.out
    )
    table = format_table(results)
    print(
        f"Tabular REINFORCE on {env_id}: {args.seeds} seeds x {args.episodes} training "
        f"episodes, {args.eval_episodes} evaluation episodes per policy"
    )
    print(table)
    print("\nmeans over seeds [Student-t 95% intervals]")
    print("\nShare of training episodes at the long length, mean over seeds, per tenth:")
    print(format_curves(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    record = {"settings": settings, "versions": package_versions(), "results": results}
    (out / "results.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"\nwrote {out / 'results.json'}; finished in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
