"""The ``offswitch`` command line: ``list``, ``train``, ``run``, ``demo``, ``compare``,
``report``, ``play``, ``replay``, ``view``.

Bad input gets one line on stderr naming the problem and the valid choices, and exit
status 2; nothing is trained or written until every value checks out. Commands import only
what they use: torch and Stable-Baselines3 load when something trains.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from offswitch.agents.hyperparameters import count, shown
from offswitch.agents.interventions import INTERVENTIONS, InterventionError
from offswitch.agents.learners import LEARNERS
from offswitch.envs import CUSTOM_ID, world_ids
from offswitch.envs.layout import LayoutError
from offswitch.experiments.spec.config import (
    ConfigError,
    TrainConfig,
    parse_assignments,
    parse_seeds,
)
from offswitch.experiments.spec.experiment import ExperimentError
from offswitch.experiments.spec.limits import MAX_WORKERS_ENV, WORKERS_PER_CORE, max_workers

USAGE_ERRORS = (ConfigError, InterventionError, LayoutError, ExperimentError)

STEPS_HELP = "(default: the learner's), at most 10,000,000 (OFFSWITCH_MAX_TRAIN_STEPS raises it)"
SEEDS_HELP = "seeds per condition, at most 10,000 (OFFSWITCH_MAX_SEEDS raises it)"


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: str) -> str:
    """``message`` with line breaks and other control characters escaped (a value typed by
    the user may hold them): an error is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


def _positive_int(text: str) -> int:
    return _int(text, 1, "a positive whole number")


def _int(text: str, low: int, what: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        if text.strip().lstrip("+-").isdigit():  # more than 4300 digits
            raise argparse.ArgumentTypeError(f"{shown(text)} is too large: give {what}") from None
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{_plain(text)} must be {what}")
    return value


def _plain(text: str) -> str:
    """A number as typed, cut short if huge."""
    return text if len(text) <= 40 else shown(text, 40)


def _whole_number(text: str) -> int:
    return _int(text, 0, "a whole number >= 0")


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

    sub.add_parser("list", help="list the worlds, agents, interventions and experiments")

    train = sub.add_parser(
        "train",
        help="train one agent over several seeds and evaluate it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_interventions_help(),
    )
    world = train.add_mutually_exclusive_group()
    world.add_argument("--env", default="offswitch/SafeInterruptibility-v0", help="world id")
    world.add_argument("--layout", metavar="FILE", help="your own world: a layout file")
    train.add_argument("--agent", default="ppo", choices=list(LEARNERS), help="learner")
    train.add_argument("--intervention", default="none", help="see the list below")
    train.add_argument(
        "--seeds",
        default="0",
        help="e.g. 0-9, 3 or 0-4,9 (default 0); seeds 0 to 2**31-1, at most 10,000 of them "
        "(OFFSWITCH_MAX_SEEDS raises it)",
    )
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_positive_int, help=f"env steps per run {STEPS_HELP}")
    budget.add_argument(
        "--episodes",
        type=_positive_int,
        help="training episodes per run (tabular learners; default: the learner's), at most "
        "1,000,000 (OFFSWITCH_MAX_TRAIN_EPISODES raises it)",
    )
    train.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    train.add_argument(
        "--hyperparameter",
        dest="hyperparameters",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a tuned hyperparameter, e.g. --hyperparameter gamma=0.95 (repeatable; "
        "an experiment file's hyperparameters table)",
    )
    train.add_argument(  # the old name of --hyperparameter, answered with the new one
        "--set", dest="old_set", action="append", default=[], help=argparse.SUPPRESS
    )
    train.add_argument(
        "--rule",
        dest="rules",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a world rule, e.g. --rule human_rationality=0 (repeatable; an experiment "
        "file's rules table)",
    )
    train.add_argument(
        "--eval-episodes",
        type=_positive_int,
        default=100,
        help="evaluation episodes per policy (default 100), at most 100,000 "
        "(OFFSWITCH_MAX_EVAL_EPISODES raises it)",
    )
    _workers(train)

    run = sub.add_parser(
        "run",
        help="run an experiment file: conditions x seeds, resumable, with its report",
        description="Run an experiment file (TOML; the shipped ones are in "
        "experiments/configs/, and `offswitch list` names them). Finished runs are kept: run "
        "the same command again to resume after a crash or Ctrl-C.",
    )
    run.add_argument("file", metavar="FILE", help="an experiment file, or a shipped one's name")
    _experiment_options(run, default_out=None)

    demo = sub.add_parser(
        "demo",
        help="the classroom demo: task reward only vs. a corrigibility penalty (the experiment "
        "file demo.toml)",
    )
    demo.add_argument("--seeds", type=_positive_int, default=None, help=SEEDS_HELP)
    demo.add_argument(
        "--steps", type=_positive_int, default=None, help=f"env steps per run {STEPS_HELP}"
    )
    _experiment_options(demo, default_out="runs/demo")

    compare = sub.add_parser(
        "compare",
        help="every intervention against the same worlds and seeds (the experiment file "
        "compare.toml)",
    )
    compare.add_argument("--seeds", type=_positive_int, default=None, help=SEEDS_HELP)
    compare.add_argument(
        "--steps", type=_positive_int, default=None, help=f"env steps per run {STEPS_HELP}"
    )
    _experiment_options(compare, default_out="runs/compare")

    report = sub.add_parser(
        "report", help="write the report of an output folder again, from its runs' files"
    )
    report.add_argument("out", metavar="DIR", help="an output folder of run, demo or compare")
    report.add_argument(
        "--to",
        metavar="DOCS",
        help="also publish the page as DOCS/<name>.md with its figures and the runs' "
        "evaluations in DOCS/<name>/ (the shipped pages: --to docs/results)",
    )

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
        dest="rules",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="world option for gymnasium.make, e.g. --rule interruption_probability=1.0 "
        "(repeatable)",
    )
    replay = sub.add_parser(
        "replay",
        help="evaluate a run's trained agent again, or film it as a GIF",
        description="Load a run folder's trained agent and world (its config.json) and evaluate "
        "it on the run's evaluation episodes, or with --gif film it. Only weights and plain "
        "arrays are read, never pickles: a model made by someone else cannot run code here.",
    )
    replay.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. runs/demo/X/seed0")
    replay.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help="episodes per policy (default: the run's)",
    )
    replay.add_argument("--gif", metavar="PATH", default=None, help="write a GIF of the agent")
    view = sub.add_parser(
        "view",
        help="write a self-contained HTML page to watch and play a run or an experiment",
        description="Write one HTML file (no network needed, opens from file://) that shows "
        "every condition's evaluation episodes side by side, the agents' policies and values, "
        "the exact optimum, the training curves, and a play mode driven by the world's tables.",
    )
    view.add_argument("path", metavar="PATH", help="a run folder or an experiment's output folder")
    view.add_argument(
        "--out", metavar="FILE", default=None, help="the page to write (default: PATH/viewer.html)"
    )
    return parser


def _workers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="processes (default: cores), at most 4 per core (OFFSWITCH_MAX_WORKERS raises "
        "it); with --backend ray, the most tasks at once",
    )
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="where runs train: processes of this machine (local, the default) or Ray tasks "
        'on a cluster (ray; pip install "offswitch[ray]"; see docs/ray.md)',
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --backend ray: the cluster, e.g. auto or ray://HOST:10001 (default "
        "$RAY_ADDRESS, else a Ray instance started here); --out must be a folder every node "
        "shares",
    )


def _experiment_options(p: argparse.ArgumentParser, default_out: str | None) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change a field of the file, e.g. --set seeds=0-29 or --set defaults.steps=50000 "
        "(repeatable)",
    )
    where = f"default {default_out}" if default_out else "default runs/<file name>"
    p.add_argument("--out", default=default_out, help=f"output folder ({where})")
    _workers(p)


CLOSED_PIPE_STATUS = 128 + 13
"""Exit status when the reader of the output went away (``offswitch list | head -3``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """The ``offswitch`` command: its exit status. A reader that closes the pipe early ends
    it quietly (:data:`CLOSED_PIPE_STATUS`, no traceback)."""
    try:
        try:
            return _main(argv)
        finally:
            # Output still buffered meets the closed pipe here, not at interpreter exit,
            # where Python would print "Exception ignored ... BrokenPipeError" about it.
            sys.stdout.flush()
            sys.stderr.flush()
    except BrokenPipeError:
        if not _silence_closed_pipes():
            raise  # a pipe of the command's own (a dead worker's, say): a real error
        # As Python's docs advise (library/signal.html, "Note on SIGPIPE"): point the closed
        # stream at devnull so that nothing tries it again. The status is not 0, since the
        # output did not all arrive, nor 1 (runs lost, here) but 141 = 128 + SIGPIPE: what a
        # shell reports for a Unix tool that died of the closed pipe (`yes | head`), as 130
        # is this command's status for Ctrl-C. SIGPIPE itself stays ignored: a Manager's or
        # Ray's socket closing must not kill the command.
        return CLOSED_PIPE_STATUS


def _silence_closed_pipes() -> bool:
    """Point stdout and stderr, where their reader has gone, at devnull; whether either had.
    Without poll (Windows), stdout is taken to be the one."""
    import os
    import select

    if not hasattr(select, "poll"):
        closed = [sys.stdout]
    else:
        closed = []
        for stream in (sys.stdout, sys.stderr):
            try:
                poll = select.poll()
                poll.register(stream.fileno(), select.POLLOUT)
                events = poll.poll(0)
            except (OSError, ValueError, AttributeError):  # closed, or no file descriptor
                continue
            if any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events):
                closed.append(stream)
    for stream in closed:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
    return bool(closed)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "play":
        return _play(args)
    if args.command == "list":
        return _list()
    if args.command == "replay":
        return _replay(args)
    if args.command == "view":
        return _view(args)
    from offswitch.experiments.running.backends import BackendError
    from offswitch.experiments.running.runner import make_backend

    try:
        if args.command == "report":
            return _report_again(Path(args.out), args.to)
        # The backend before the experiment: a refused backend leaves --out untouched. A local
        # pool's workers start once the experiment checks out, and import torch while the
        # output folder is checked and the command goes on.
        _check_workers(args)
        backend = make_backend(args.backend, args.workers, args.address)
        experiment, out, command = _experiment(args, backend.prepare)
    except (*USAGE_ERRORS, BackendError) as err:
        if "backend" in locals():
            backend.close()
        return _usage_error(err)
    return _run(experiment, out, args.workers, command, backend)


def _check_workers(args: argparse.Namespace) -> None:
    if args.workers is not None:
        limit = max_workers(ConfigError)
        if args.workers > limit:
            raise ConfigError(
                f"--workers {count(args.workers)} is over the limit of {limit} ({WORKERS_PER_CORE} "
                f"per core): give fewer, or set {MAX_WORKERS_ENV} to go past it knowingly"
            )


def _usage_error(err: Exception) -> int:
    print(f"offswitch: error: {one_line(err)}", file=sys.stderr)
    return 2


def _experiment(args: argparse.Namespace, checked: Any = None):
    """The experiment a command asks for, checked, its output folder and its command line;
    ``checked()`` is called once the experiment itself is valid, before the folder's checks."""
    from offswitch.experiments.results.store import StoreError, check_output_folder
    from offswitch.experiments.spec.experiment import load_experiment, single_condition_experiment

    if args.command == "train":
        seeds = parse_seeds(args.seeds)  # first: it is cheap, and torch loads for the learner
        if args.old_set:
            raise ConfigError(
                f"--set {args.old_set[0]}: offswitch train calls it --hyperparameter now, as "
                f"experiment files do: write --hyperparameter {args.old_set[0]}"
            )
        config = TrainConfig(
            env=args.env,
            layout=args.layout,
            agent=args.agent,
            intervention=args.intervention,
            steps=args.steps,
            episodes=args.episodes,
            eval_episodes=args.eval_episodes,
            hyperparameters=parse_assignments(args.hyperparameters, "--hyperparameter"),
            rules=parse_assignments(args.rules, "--rule"),
        ).validate()
        world = args.layout if args.layout else args.env
        label = f"{config.world_name} {args.agent} {args.intervention}"
        title = f"{args.agent} on {world}, intervention {args.intervention}"
        experiment = single_condition_experiment(label, config, seeds, title)
        out = args.out
    else:
        name = args.file if args.command == "run" else args.command
        edits = list(args.set)
        if args.command in ("demo", "compare"):
            if args.seeds is not None:
                edits.append(f"seeds=0-{args.seeds - 1}")
            if args.steps is not None:
                edits.append(f"defaults.steps={args.steps}")
        experiment = load_experiment(name, edits)
        out = args.out or f"runs/{experiment.name}"
    if checked is not None:
        checked()
    try:
        out = check_output_folder(out)
        from offswitch.experiments.running.runner import check_finished, experiment_runs

        check_finished(experiment_runs(experiment, out))  # reads only
        out.mkdir(parents=True, exist_ok=True)  # the last check: can it be written?
    except OSError as err:
        reason = err.strerror or err
        raise ConfigError(f"--out {shown(str(out))}: {reason}; give another folder") from None
    except StoreError as err:
        raise ConfigError(str(err)) from None
    return experiment, out, "offswitch " + " ".join(sys.argv[1:] if len(sys.argv) > 1 else [])


def _play(args: argparse.Namespace) -> int:
    from offswitch.experiments.interactive.play import play, read_keys

    try:
        if (args.env_id is None) == (args.layout is None):
            raise ConfigError("give a world id (offswitch list shows them) or --layout FILE")
        rules = parse_assignments(args.rules, "--rule", reserved=("seed", "clear", "render_mode"))
    except USAGE_ERRORS as err:
        return _usage_error(err)
    keys = read_keys(sys.stdin)
    try:
        # Redraw in place only for a person at a terminal; a script's output scrolls.
        clear = sys.stdin.isatty() and sys.stdout.isatty()
        if args.layout is not None:
            rules["layout"] = args.layout
        env_id = CUSTOM_ID if args.env_id is None else args.env_id
        play(env_id, keys, sys.stdout, seed=args.seed, clear=clear, **rules)
    except USAGE_ERRORS as err:
        return _usage_error(err)
    except KeyboardInterrupt:
        return 130
    finally:
        keys.close()  # gives the terminal back its line mode
    return 0


def _replay(args: argparse.Namespace) -> int:
    from offswitch.experiments.interactive.replay import main
    from offswitch.experiments.results.saved import ReplayError

    try:
        return main(args.run_dir, args.episodes, args.gif, sys.stdout)
    except ReplayError as err:
        return _usage_error(err)


def _view(args: argparse.Namespace) -> int:
    from offswitch.experiments.pages.viewer import ViewerError, write_viewer

    path = Path(args.path)
    out = Path(args.out) if args.out else path / "viewer.html"
    if out.is_dir():
        return _usage_error(
            ConfigError(f"--out {out} is a folder: give a file name such as {out / 'viewer.html'}")
        )
    if not out.parent.is_dir() and path.is_dir():
        return _usage_error(ConfigError(f"--out {out}: no folder {out.parent}; create it first"))
    try:
        page = write_viewer(path, out)
    except ViewerError as err:
        return _usage_error(err)
    except OSError as err:  # no permission, a full disk
        return _usage_error(ConfigError(f"cannot write {out}: {err.strerror or err}; give --out"))
    print(f"wrote {page} ({page.stat().st_size / 1e6:.2f} MB): open it in a browser")
    return 0


def _list() -> int:
    print("worlds:")
    for env_id in world_ids():
        print(f"  {env_id}")
    print("agents:")
    for name, entry in LEARNERS.items():
        print(f"  {name:16s} {entry.description}")
    print(_interventions_help())
    from offswitch.experiments.spec.experiment import CONFIGS

    print("experiments (offswitch run NAME):")
    for path in sorted(CONFIGS.glob("*.toml")):
        print(f"  {path.stem}")
    return 0


def _run(experiment: Any, out: Path, workers: int | None, command: str, backend: Any) -> int:
    """Run an experiment with progress on stderr, then print and write its report."""
    from rich.console import Console

    from offswitch.experiments.results.store import StoreError
    from offswitch.experiments.running.backends import BackendError, Interrupted, RunsLost
    from offswitch.experiments.running.runner import run_experiment

    console = Console(stderr=True)
    runs = experiment.runs()
    console.print(
        f"[bold]{experiment.title}[/bold]: {len(runs)} runs {backend.describe(len(runs))}, "
        f"into {out}"
    )
    start = time.perf_counter()
    try:

        def run(*args: Any) -> list[dict]:
            return run_experiment(*args, command=command, backend=backend)

        backend.connect()  # a cluster's own messages before the progress display, not in it
        results = _with_progress(experiment, out, workers, console, run)
    except (StoreError, BackendError) as err:
        return _usage_error(err)
    except Interrupted as stop:
        console.print(
            f"stopped: {stop.finished} of {stop.total} runs finished and kept in {out}; run "
            "the same command again to train the rest"
        )
        return 130
    except KeyboardInterrupt:  # before a sweep began (while a Ray instance started, say)
        console.print(f"stopped before training; finished runs are kept in {out}")
        return 130
    except RunsLost as lost:
        console.print(
            f"{len(lost.lost)} runs lost when their workers died ({lost.reason}), after "
            f"retries: {lost.finished} of {lost.total} runs finished and kept in {out}; run "
            "the same command again to train the rest",
            markup=False,
            highlight=False,
        )
        return 1
    finally:
        backend.close()
    console.print(f"finished in {time.perf_counter() - start:.0f} s")
    _print_and_write(experiment, results, out, command)
    return 0


def _with_progress(experiment: Any, out: Path, workers: int | None, console: Any, run: Any):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    from offswitch.experiments.results.store import run_folder

    names = [str(run_folder(out, c.slug, seed)) for c, seed in experiment.runs()]
    start = time.perf_counter()
    if not console.is_terminal:
        # A log file or CI: one line per finished run instead of redrawn bars.
        finished: list[str] = []

        def log_finished(name: str, done: float | None) -> None:
            if done is None:
                finished.append(name)
                elapsed = time.perf_counter() - start
                shown = Path(name).relative_to(out)
                line = f"[{len(finished)}/{len(names)}] {shown} done ({elapsed:.0f} s)"
                console.print(line, markup=False, highlight=False)

        return run(experiment, out, workers, log_finished)
    with Progress(
        "{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks = {n: progress.add_task(str(Path(n).relative_to(out)), total=1.0) for n in names}

        def on_progress(name: str, done: float | None) -> None:
            if name in tasks:
                progress.update(tasks[name], completed=1.0 if done is None else done)

        return run(experiment, out, workers, on_progress)


def _print_and_write(experiment: Any, results: list[dict], out: Path, command: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from offswitch.experiments.pages.layouts import switch_runs
    from offswitch.experiments.pages.publish import write_report
    from offswitch.experiments.pages.report import TABLE_NOTE, table_rows

    options = experiment.report
    # Coin pools have neither switch nor goal: their measures are on the page only.
    shown = switch_runs(results)
    if shown:
        header, rows = table_rows(
            shown,
            options.get("columns") or _default_columns(experiment),
            baseline=options.get("baseline"),
        )
        table = Table(title=experiment.title, caption=TABLE_NOTE, caption_justify="left")
        for name in header:
            table.add_column(name)
        for row in rows:
            table.add_row(*row)
        # Wide enough for the whole table even when output goes to a file or a pipe.
        Console(width=max(shutil.get_terminal_size().columns, 170)).print(table)
    page = write_report(experiment, results, out, command)
    print(f"\nwrote {page}, {out / 'results.csv'} and the figures in {out / 'figures'}")
    print(f"per-run logs, agents and TensorBoard files: {out}  (tensorboard --logdir {out})")


def _default_columns(experiment: Any) -> list[str]:
    from offswitch.experiments.pages.report import DEFAULT_COLUMNS

    return list(DEFAULT_COLUMNS)


def _report_again(out: Path, to: str | None = None) -> int:
    from offswitch.experiments.pages.publish import rewrite_report
    from offswitch.experiments.results.store import StoreError

    try:
        page = rewrite_report(out, Path(to) if to else None)
    except (FileNotFoundError, ValueError, StoreError) as err:
        return _usage_error(err)
    except OSError as err:  # --to names a file, or a folder that cannot be written
        return _usage_error(StoreError(f"--to {to}: {err.strerror or err}; give a folder"))
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
