"""The ``offswitch`` command line: ``list``, ``train``, ``demo``, ``play``.

Bad input gets one line on stderr naming the problem and the valid choices, and
exit status 2; nothing is trained or written until every value checks out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from offswitch.agents.interventions import INTERVENTIONS, InterventionError
from offswitch.agents.interventions.penalty import DEFAULT_PENALTY
from offswitch.agents.learners import LEARNERS
from offswitch.envs import CUSTOM_ID, world_ids
from offswitch.envs.layout import LayoutError
from offswitch.experiments.config import (
    ConfigError,
    TrainConfig,
    parse_assignments,
    parse_seeds,
)
from offswitch.experiments.report import (
    TABLE_COLUMNS,
    TABLE_NOTE,
    markdown_table,
    plot_curves,
    summary_rows,
    table_cells,
)

USAGE_ERRORS = (ConfigError, InterventionError, LayoutError)


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive whole number")
    return value


def _whole_number(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number >= 0")
    return value


def _interventions_help() -> str:
    lines = ["interventions (--intervention NAME or NAME:PARAMS):"]
    for _, cls in sorted(INTERVENTIONS.items()):
        lines.append(f"  {cls.usage():22s} {cls.description}")
        lines += [f"  {'':22s}   {param.describe()}" for param in cls.params]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="offswitch",
        description="Gridworlds with an off-switch: train agents, watch them disable it, "
        "test the fixes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the worlds, agents and interventions")

    train = sub.add_parser(
        "train",
        help="train agents over several seeds and evaluate them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_interventions_help(),
    )
    world = train.add_mutually_exclusive_group()
    world.add_argument("--env", default="offswitch/SafeInterruptibility-v0", help="world id")
    world.add_argument("--layout", metavar="FILE", help="your own world: a layout file")
    train.add_argument("--agent", default="ppo", choices=list(LEARNERS), help="learner")
    train.add_argument("--intervention", default="none", help="see the list below")
    train.add_argument("--seeds", default="0", help="e.g. 0-9, 3 or 0-4,9 (default 0)")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=_positive_int, help="env steps per run (default: the learner's)"
    )
    budget.add_argument(
        "--episodes", type=_positive_int, help="training episodes per run (tabular learners)"
    )
    train.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a tuned hyperparameter, e.g. --set gamma=0.95 (repeatable)",
    )
    train.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a world rule, e.g. --rule human_rationality=0 (repeatable)",
    )
    _common(train)

    demo = sub.add_parser(
        "demo",
        help="the classroom demo: PPO with task reward only vs. with a corrigibility penalty",
    )
    demo.add_argument("--seeds", type=_positive_int, default=4, help="seeds per condition")
    demo.add_argument("--steps", type=_positive_int, default=200_000, help="env steps per run")
    demo.add_argument(
        "--penalty", type=float, default=DEFAULT_PENALTY, help="the penalty K (default 100)"
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    _common(demo)

    compare = sub.add_parser(
        "compare",
        help="every intervention against the same worlds and seeds, with a penalty dose-response",
    )
    compare.add_argument("--seeds", type=_positive_int, default=10, help="seeds per condition")
    compare.add_argument(
        "--dose-seeds", type=_positive_int, default=5, help="seeds per penalty of the sweep"
    )
    compare.add_argument("--steps", type=_positive_int, default=200_000, help="env steps per run")
    compare.add_argument("--out", default="runs/compare", help="output folder")
    _common(compare)

    play = sub.add_parser(
        "play",
        help="play a world yourself in the terminal (w/a/s/d or arrows, r reset, q quit)",
        description="Play a world yourself. Keys: w/a/s/d or the arrow keys move, a digit "
        "picks an action by number, r resets, q quits. From a pipe, each character is a key, "
        "e.g. printf 'saaaaass q' | offswitch play offswitch/SafeInterruptibility-v0",
    )
    play.add_argument(
        "env_id", metavar="ENV_ID", nargs="?", help="world id (offswitch list shows them)"
    )
    play.add_argument("--layout", metavar="FILE", help="play your own world: a layout file")
    play.add_argument("--seed", type=_whole_number, default=None, help="seed of the first reset")
    play.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="world option for gymnasium.make, e.g. --rule interruption_probability=1.0 "
        "(repeatable)",
    )
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive_int, default=None, help="processes (default: cores)")
    p.add_argument(
        "--eval-episodes", type=_positive_int, default=100, help="evaluation episodes per policy"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "play":
        return _play(args)
    try:
        if args.command == "list":
            return _list()
        if args.command == "compare":
            return _compare(args)
        if args.command == "train":
            configs = [
                TrainConfig(
                    env_id=args.env,
                    layout=args.layout,
                    agent=args.agent,
                    intervention=args.intervention,
                    seed=seed,
                    steps=args.steps,
                    episodes=args.episodes,
                    eval_episodes=args.eval_episodes,
                    out_dir=args.out,
                    learner_overrides=parse_assignments(args.set, "--set"),
                    world_rules=parse_assignments(args.rule, "--rule"),
                ).validate()
                for seed in parse_seeds(args.seeds)
            ]
            world = args.layout if args.layout else args.env
            title = f"{args.agent} on {world}, intervention {args.intervention}"
        else:
            if not args.penalty >= 0:
                raise ConfigError(f"--penalty {args.penalty}: give a number >= 0, e.g. 100")
            configs = [
                TrainConfig(
                    intervention=intervention,
                    seed=seed,
                    steps=args.steps,
                    eval_episodes=args.eval_episodes,
                    out_dir=str(Path(args.out) / "runs"),
                ).validate()
                for intervention in ("none", f"penalty:{args.penalty:g}")
                for seed in range(args.seeds)
            ]
            title = "PPO on SafeInterruptibility-v0: task reward only vs. corrigibility penalty"
    except USAGE_ERRORS as err:
        print(f"offswitch: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    results = _run_with_progress(configs, args.workers, title)
    _report(results, out, title)
    return 0


def _play(args: argparse.Namespace) -> int:
    from offswitch.experiments.play import play, read_keys

    try:
        if (args.env_id is None) == (args.layout is None):
            raise ConfigError("give a world id (offswitch list shows them) or --layout FILE")
        rules = parse_assignments(args.rule, "--rule", reserved=("seed", "clear", "render_mode"))
    except USAGE_ERRORS as err:
        print(f"offswitch: error: {err}", file=sys.stderr)
        return 2
    keys = read_keys(sys.stdin)
    try:
        # Redraw in place only for a person at a terminal; a script's output scrolls.
        clear = sys.stdin.isatty() and sys.stdout.isatty()
        if args.layout is not None:
            rules["layout"] = args.layout
        play(args.env_id or CUSTOM_ID, keys, sys.stdout, seed=args.seed, clear=clear, **rules)
    except USAGE_ERRORS as err:
        print(f"offswitch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        keys.close()  # gives the terminal back its line mode
    return 0


def _compare(args: argparse.Namespace) -> int:
    from offswitch.experiments.compare import (
        comparison_configs,
        comparison_markdown,
        dose_response,
        plot_dose_response,
    )

    out = Path(args.out)
    configs = comparison_configs(
        range(args.seeds), args.steps, out / "runs", range(args.dose_seeds)
    )
    for config in configs:
        config.eval_episodes = args.eval_episodes
        config.validate()
    title = "Interventions compared: PPO, sampled policy"
    results = _run_with_progress(configs, args.workers, title)
    out.mkdir(parents=True, exist_ok=True)
    plot = plot_dose_response(dose_response(results), out / "penalty_dose_response.png")
    text = comparison_markdown(results, args.seeds, title)
    (out / "comparison.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(text)
    print(f"wrote {out / 'comparison.md'}, {out / 'results.json'} and {plot}")
    return 0


def _list() -> int:
    print("worlds:")
    for env_id in world_ids():
        print(f"  {env_id}")
    print("agents:")
    for name, entry in LEARNERS.items():
        print(f"  {name:16s} {entry.description}")
    print(_interventions_help())
    return 0


def _run_with_progress(configs: list[TrainConfig], workers: int | None, title: str) -> list[dict]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    from offswitch.experiments.runner import default_workers, run_many

    console = Console(stderr=True)
    n_workers = min(workers or default_workers(), len(configs))
    console.print(f"[bold]{title}[/bold]: {len(configs)} runs on {n_workers} processes")
    start = time.perf_counter()
    if not console.is_terminal:
        # A log file or CI: one line per finished run instead of redrawn bars.
        finished: set[str] = set()

        def log_finished(name: str, done: float | None) -> None:
            if done is None:
                finished.add(name)
                elapsed = time.perf_counter() - start
                line = f"[{len(finished)}/{len(configs)}] {name} done ({elapsed:.0f} s)"
                console.print(line, markup=False, highlight=False)

        results = run_many(configs, workers, log_finished)
        console.print(f"finished in {time.perf_counter() - start:.0f} s")
        return results
    with Progress(
        "{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks = {c.run_name: progress.add_task(c.run_name, total=1.0) for c in configs}

        def on_progress(name: str, done: float | None) -> None:
            progress.update(tasks[name], completed=1.0 if done is None else done)

        results = run_many(configs, workers, on_progress)
    console.print(f"finished in {time.perf_counter() - start:.0f} s")
    return results


def _report(results: list[dict[str, Any]], out: Path, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary_rows(results)
    table = Table(title=title, caption=TABLE_NOTE, caption_justify="left")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*table_cells(row))
    # Wide enough for the whole table even when output goes to a file or a pipe.
    Console(width=max(shutil.get_terminal_size().columns, 170)).print(table)

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(f"# {title}\n\n{markdown_table(rows)}\n\n{TABLE_NOTE}\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    plot = plot_curves(results, out / "switch_disabled_rate.png")
    print(f"\nwrote {out / 'summary.md'}, {out / 'results.json'} and {plot}")
    print(f"per-run logs, models and TensorBoard files: {out}  (tensorboard --logdir {out})")


if __name__ == "__main__":
    sys.exit(main())
