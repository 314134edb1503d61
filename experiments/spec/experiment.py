"""Experiments as files: conditions x seeds, declared in TOML, checked before anything runs.

An experiment file (the shipped ones are in ``experiments/configs/``)::

    title = "PPO on SafeInterruptibility-v0: task reward only vs. corrigibility penalty"
    description = "What it shows, in a sentence or two (the report's first paragraph)."
    seeds = "0-9"                    # or a list of whole numbers

    [defaults]                       # fields every condition shares (overridable per condition)
    env = "offswitch/SafeInterruptibility-v0"
    agent = "batched-ppo"
    steps = 1_000_000                # batched-ppo's default budget

    [[conditions]]
    label = "task reward only"       # names the condition in tables, figures and folders
    intervention = "none"

    [[conditions]]
    label = "penalty K={k}"
    intervention = "penalty:{k}"
    sweep = { k = [0, 50, 100] }     # one condition per value; {k} is filled in

    [report]
    baseline = "task reward only"    # differences are reported against this condition
    columns = ["seeds_disabling", "per100:instruction/disabled_instructed@1"]  # report.py
    figures = ["curve:supervisor/gap", "sweep:switch_disabled_rate"]            # figures.py
    over_training = ["supervisor/gap"]   # a table of measures over training, read from the
    budgets = [50_000, 200_000]          # learning curves just before these steps
    map = ["rules.interruption_probability", "rules.step_reward"]  # an incentive map (below)
    notes = "What the results mean and what was checked (Markdown, after the tables)."

A condition's fields (also allowed in ``[defaults]``): ``label``, ``env`` or ``layout``,
``rules`` (a table of world rules), ``agent``, ``intervention``, ``hyperparameters`` (a table),
``steps`` or ``episodes``, ``observation``, ``eval_episodes``, ``eval_seed``, ``seeds``,
``group`` (conditions of one group share a table in the report), ``phases`` and ``sweep``.

``phases`` trains the same agent in phases, each a table with its ``steps``, ``intervention``
(default ``none``), ``hyperparameters`` (replacing the condition's for that phase) and
``label``, e.g. compliance tuning then task training::

    phases = [
        { label = "compliance tuning", steps = 150_000, intervention = "compliance:100" },
        { label = "task training", steps = 300_000, hyperparameters = { kl_coef = 0.1 } },
    ]

A condition with phases takes its steps and intervention from them (the ``[defaults]``'
are ignored; its own are refused). A sweep's keys
are either a field (``steps``, ``rules.max_steps``, ``hyperparameters.gamma``: set directly) or
a name used as ``{name}`` in the condition's text fields (a field that is exactly ``"{name}"``
takes the value itself, so ``hyperparameters = { kl_coef = "{kl}" }`` in a phase sweeps a
number); several keys sweep their product.

``[report] map = [X, Y]`` makes the page an incentive map (``experiments/pages/maps.py``): X
and Y are two keys that every condition sweeps (each condition one cell; each ``group`` one map),
and the page shows, cell by cell, whether the exact optimum disables the switch beside how
often the trained agents do, instead of the per-condition figures and GIFs.

``offswitch run FILE --set seeds=0-29 --set defaults.steps=50000`` edits the file's fields by
their dotted path before it is checked (``conditions.1.intervention=penalty:50``).
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offswitch.agents.hyperparameters import count, shown
from offswitch.agents.interventions import InterventionError
from offswitch.envs.layout import LayoutError
from offswitch.experiments.spec import limits
from offswitch.experiments.spec.config import ConfigError, TrainConfig, parse_override, parse_seeds
from offswitch.experiments.spec.limits import MAX_FILE_BYTES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
"""The shipped experiment files."""

MAX_RUNS = 10_000
"""The most runs one file may ask for, unless ``OFFSWITCH_MAX_RUNS`` allows more."""

TOP_LEVEL = {"name", "title", "description", "seeds", "defaults", "conditions", "report"}
CONDITION_FIELDS = {
    "label": str,
    "env": str,
    "layout": str,
    "rules": dict,
    "agent": str,
    "intervention": str,
    "hyperparameters": dict,
    "steps": int,
    "episodes": int,
    "observation": str,
    "eval_episodes": int,
    "eval_seed": int,
    "seeds": (str, list, int),
    "group": str,
    "sweep": dict,
    "phases": list,
}
REPORT_FIELDS = {
    "baseline": str,
    "columns": list,
    "measures": list,
    "figures": list,
    "over_training": list,
    "budgets": list,
    "notes": str,
    "map": list,
}
SWEPT = "__swept__"
"""Key under which :func:`_expand` hands a condition's swept values to :func:`_condition`
(not a field of the file: it cannot collide with one)."""


class ExperimentError(ValueError):
    """A malformed experiment file; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Condition:
    """One condition of an experiment: a training configuration run over several seeds."""

    label: str
    config: TrainConfig
    """The run's configuration, with ``seed`` left at 0 (see :meth:`run`)."""
    seeds: tuple[int, ...]
    group: str = ""
    sweep: tuple[tuple[str, Any], ...] = ()
    """The swept values that made this condition, as ``(key, value)`` pairs in the sweep's
    order (``(("k", 50),)`` for ``sweep = { k = [...] }``); empty for a condition without a
    sweep. Figures plot against them, so they need not be read back out of labels."""

    @property
    def sweep_values(self) -> dict[str, Any]:
        """:attr:`sweep` as a dict."""
        return dict(self.sweep)

    @property
    def slug(self) -> str:
        """The condition's folder name: its label, in letters, digits, ``-``, ``.``, ``=``."""
        return slug(self.label)

    def run(self, seed: int) -> TrainConfig:
        return self.config.with_seed(seed)


@dataclass
class Experiment:
    """A loaded, expanded and checked experiment file."""

    name: str
    title: str
    description: str
    conditions: list[Condition]
    report: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    """The file's content after ``--set`` edits, as recorded beside the results."""
    path: Path | None = None

    def runs(self) -> list[tuple[Condition, int]]:
        return [(c, seed) for c in self.conditions for seed in c.seeds]

    def condition(self, label: str) -> Condition:
        for c in self.conditions:
            if c.label == label:
                return c
        raise KeyError(label)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "-", text).strip("-") or "condition"


def find_experiment(name_or_path: str) -> Path:
    """A file path, or the name of a shipped experiment (``demo`` -> ``configs/demo.toml``)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ExperimentError(
            f"experiment {shown(name_or_path, 300)} is not a file name: give a .toml file or the "
            "name of a shipped experiment"
        )
    name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or "\0" in name_or_path or not name_or_path.strip():
        raise ExperimentError(f"{shown(name_or_path, 300)}: give an experiment file (.toml)")
    try:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path
        shipped = CONFIGS / f"{name_or_path}.toml"
        if "/" not in name_or_path and shipped.is_file():
            return shipped
        exists = path.exists()
    except (OSError, RuntimeError) as err:  # a name too long, no permission, ~nobody
        reason = (getattr(err, "strerror", None) or str(err)).rstrip(".")
        raise ExperimentError(
            f"{shown(name_or_path, 300)}: {reason}; give an experiment file"
        ) from None
    if exists:
        what = "a folder" if path.is_dir() else "not a regular file"
        raise ExperimentError(
            f"{shown(name_or_path, 300)}: is {what}; give an experiment file (.toml)"
        )
    names = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.toml")))
    raise ExperimentError(
        f"{shown(name_or_path, 300)}: no such file, and no shipped experiment of that name: "
        "give a .toml "
        f"file or one of {names}"
    )


def load_experiment(name_or_path: str, edits: Sequence[str] = ()) -> Experiment:
    """Read, edit (``--set PATH=VALUE``), expand and check an experiment file."""
    path = find_experiment(name_or_path)
    where = str(path)
    most = MAX_FILE_BYTES
    try:
        with path.open("rb") as handle:  # no more than the limit is read
            data = handle.read(most + 1)
            if len(data) > most:
                most = limits.limit(limits.MAX_FILE_BYTES_ENV, MAX_FILE_BYTES, ExperimentError)
                data += handle.read(most + 1 - len(data))
    except OSError as err:
        raise ExperimentError(f"{where}: {err.strerror or err}; give a readable file") from None
    if len(data) > most:
        raise ExperimentError(
            f"{where} is over the limit of {most:,} bytes for an experiment file: give a "
            f"smaller file, or set {limits.MAX_FILE_BYTES_ENV} to go past it knowingly"
        )
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ExperimentError(f"{where}: not valid TOML: {err}") from None
    if isinstance(edits, str) or not all(isinstance(e, str) for e in edits):
        raise ExperimentError(f"edits {shown(edits)}: give a list of PATH=VALUE texts")
    for edit in edits:
        _apply_edit(raw, edit, where)
    return build_experiment(raw, where, default_name=path.stem, path=path)


def _apply_edit(raw: dict[str, Any], text: str, where: str) -> None:
    key, eq, value = (part.strip() for part in text.partition("="))
    if not eq or not key:
        raise ExperimentError(f"--set {text!r}: write PATH=VALUE, e.g. --set seeds=0-29")
    try:
        parsed = parse_override(text, "--set")[1]
    except ConfigError:
        parsed = value  # plain text, e.g. seeds=0-29 or intervention=penalty:50
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ExperimentError(
                    f"--set {key}: {'.'.join(parts[:i])} has {len(node)} entries; "
                    f"give an index from 0 to {len(node) - 1}"
                )
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ExperimentError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a table")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ExperimentError(f"--set {key}: no entry {last}")
        node[int(last)] = parsed
    else:
        node[last] = parsed


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_fields(table: dict[str, Any], allowed: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ExperimentError(
                f"{where}: unknown field {key!r}{_suggest(key, list(allowed))}: the fields are "
                f"{', '.join(sorted(allowed))}"
            )
        kinds = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join("table" if k is dict else k.__name__ for k in kinds)
            raise ExperimentError(
                f"{where}.{key}: {value!r} is a {type(value).__name__}; give a {names}"
            )


def _check_over_training(report: dict[str, Any], where: str) -> None:
    """``over_training`` (measures) and ``budgets`` (steps) come together, as text and whole
    numbers."""
    metrics, budgets = report.get("over_training"), report.get("budgets")
    if (metrics is None) != (budgets is None):
        raise ExperimentError(
            f"{where}: give over_training (the measures) and budgets (the steps at which to "
            'read them) together, e.g. over_training = ["evaluation/gap"], budgets = [50_000]'
        )
    if metrics is None:
        return
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ExperimentError(f"{where}.over_training: give a list of measure names")
    if not budgets or not all(
        isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in budgets
    ):
        raise ExperimentError(f"{where}.budgets: give a list of whole numbers of steps >= 1")


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ExperimentError(f'{where}: {value!r} is not a seed range; write e.g. "0-9"')
    if isinstance(value, int):
        value = [value]
    if isinstance(value, list):
        if not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
            raise ExperimentError(f'{where}: give a list of whole numbers >= 0, or e.g. "0-9"')
        value = ",".join(str(s) for s in value)
    try:
        return tuple(parse_seeds(str(value)))
    except ConfigError as err:
        raise ExperimentError(f"{where}: {err}") from None


class _Filler(string.Formatter):
    """``str.format`` for ``{name}`` fields, without attribute or index look-ups and with
    widths and precisions of at most :data:`MAX_FORMAT_WIDTH` (``{k:>999999999}`` would
    build a gigabyte string)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise KeyError(field_name)  # e.g. {k.__class__} or {k[0]}: left as written
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", format_spec)):
            raise ExperimentError(
                f"format {{:{shown(format_spec)}}} asks for more than {MAX_FORMAT_WIDTH} "
                "characters: give a smaller width or precision"
            )
        return super().format_field(value, format_spec)


MAX_FORMAT_WIDTH = 100
"""Widest field, and most digits, that a ``{name:spec}`` of a sweep may ask for."""


TEXT_FIELDS = ("label", "intervention")
"""Fields inside tables (a phase's) that stay text when filled with a swept number."""


def _fill(value: Any, names: dict[str, Any], raw: bool = False) -> Any:
    """``value`` with ``{name}`` filled in; with ``raw`` (inside a table, such as a phase's
    hyperparameters) a text that is exactly ``{name}`` becomes the swept value itself."""
    whole = re.fullmatch(r"\{(\w+)\}", value) if raw and isinstance(value, str) else None
    if whole and whole.group(1) in names:  # a number stays a number
        return names[whole.group(1)]
    if isinstance(value, str):
        try:
            return _Filler().format(value, **names)
        except ExperimentError:
            raise
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return value
    if isinstance(value, dict):
        return {k: _fill(v, names, k not in TEXT_FIELDS) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names, True) for v in value]
    return value


def _expand(condition: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One condition per combination of its sweep's values."""
    sweep = condition.pop("sweep", None)
    if sweep is None:
        return [condition]
    if not sweep:
        raise ExperimentError(f"{where}.sweep is empty: give at least one NAME = [values]")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ExperimentError(
                f"{where}.sweep.{key}: give a non-empty list of values, e.g. {key} = [1, 2]"
            )
    size = math.prod(len(values) for values in sweep.values())
    if size > MAX_RUNS and size > limits.limit("OFFSWITCH_MAX_RUNS", MAX_RUNS, ExperimentError):
        raise ExperimentError(
            f"{where}.sweep makes {count(size)} conditions, over the limit of runs: sweep fewer "
            "values, or set OFFSWITCH_MAX_RUNS to go past it knowingly"
        )
    expanded = []
    keys = list(sweep)
    for combination in itertools.product(*(sweep[k] for k in keys)):
        values = dict(zip(keys, combination))
        names = {k.split(".")[-1]: v for k, v in values.items()}
        one = {k: _fill(v, names) for k, v in condition.items()}
        for key, value in values.items():
            head, _, tail = key.partition(".")
            if head in CONDITION_FIELDS and head != "sweep":
                if tail:
                    one[head] = {**one.get(head, {}), tail: value}
                else:
                    one[head] = value
        if "label" not in condition:
            one["label"] = " ".join(f"{k}={v}" for k, v in values.items())
        one[SWEPT] = tuple(values.items())
        expanded.append(one)
    return expanded


def build_experiment(
    raw: dict[str, Any], where: str, default_name: str = "experiment", path: Path | None = None
) -> Experiment:
    """An :class:`Experiment` from a file's parsed content; :class:`ExperimentError` names
    the first problem, before any run starts."""
    for key in raw:
        if key not in TOP_LEVEL:
            raise ExperimentError(
                f"{where}: unknown field {key!r}{_suggest(key, list(TOP_LEVEL))}: the fields are "
                f"{', '.join(sorted(TOP_LEVEL))}"
            )
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ExperimentError(f"{where}: defaults must be a table ([defaults])")
    _check_fields(defaults, CONDITION_FIELDS, f"{where}: defaults")
    conditions = raw.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise ExperimentError(
            f"{where}: no conditions: add at least one [[conditions]] table with a label"
        )
    report = raw.get("report", {})
    if not isinstance(report, dict):
        raise ExperimentError(f"{where}: report must be a table ([report])")
    _check_fields(report, REPORT_FIELDS, f"{where}: report")
    _check_over_training(report, f"{where}: report")
    top_seeds = raw.get("seeds", 0)
    built: list[Condition] = []
    for index, entry in enumerate(conditions):
        at = f"{where}: conditions[{index}]"
        if not isinstance(entry, dict):
            raise ExperimentError(f"{at}: give a table ([[conditions]])")
        _check_fields(entry, CONDITION_FIELDS, at)
        merged = {**defaults, **entry}
        for table in ("rules", "hyperparameters"):
            if table in defaults and table in entry:
                merged[table] = {**defaults[table], **entry[table]}
        if "phases" in merged:
            given = [k for k in ("steps", "episodes", "intervention") if k in entry]
            if given:
                raise ExperimentError(
                    f"{at}: {given[0]} and phases: with phases, give steps and intervention "
                    "in each phase"
                )
            for key in ("steps", "episodes", "intervention"):  # the defaults' are the phases'
                merged.pop(key, None)
        for one in _expand(dict(merged), at):
            built.append(_condition(one, top_seeds, at))
    total = sum(len(c.seeds) for c in built)
    limit = limits.limit("OFFSWITCH_MAX_RUNS", MAX_RUNS, ExperimentError)
    if total > limit:
        raise ExperimentError(
            f"{where}: {total:,} runs ({len(built)} conditions x their seeds) is over the limit "
            f"of {limit:,}: use fewer seeds or sweep values, or set OFFSWITCH_MAX_RUNS to go "
            "past it knowingly"
        )
    labels = [c.label for c in built]
    slugs = [c.slug for c in built]
    for name in (labels, slugs):
        repeated = sorted({x for x in name if name.count(x) > 1})
        if repeated:
            raise ExperimentError(
                f"{where}: two conditions are labelled {repeated[0]!r}: give each its own label"
            )
    _check_map(report, built, f"{where}: report.map")
    baseline = report.get("baseline")
    if baseline is not None and baseline not in labels:
        raise ExperimentError(
            f"{where}: report.baseline {baseline!r} is not a condition's label: choose one of "
            f"{', '.join(labels)}"
        )
    title = raw.get("title", default_name)
    description = raw.get("description", "")
    for key, value in (("title", title), ("description", description)):
        if not isinstance(value, str):
            raise ExperimentError(f"{where}: {key} must be text")
    name = raw.get("name", default_name)
    if (
        not isinstance(name, str)
        or not re.fullmatch(r"[A-Za-z0-9._=+-]{1,100}", name)
        or (name in (".", ".."))
    ):
        raise ExperimentError(
            f"{where}: name {shown(name)} is not a folder name (runs/<name> by default): give "
            "1 to 100 letters, digits, '.', '_', '-', '=' or '+'"
        )
    return Experiment(
        name=name,
        title=title,
        description=description.strip(),
        conditions=built,
        report=report,
        source=raw,
        path=path,
    )


def _check_map(report: dict[str, Any], conditions: list[Condition], where: str) -> None:
    """``map = [X, Y]``: two different keys that every condition sweeps."""
    axes = report.get("map")
    if axes is None:
        return
    example = 'e.g. map = ["rules.interruption_probability", "rules.step_reward"]'
    if len(axes) != 2 or not all(isinstance(a, str) and a for a in axes) or axes[0] == axes[1]:
        raise ExperimentError(f"{where}: give two different sweep keys, {example}")
    for c in conditions:
        missing = [a for a in axes if a not in c.sweep_values]
        if missing:
            swept = ", ".join(c.sweep_values) or "nothing"
            raise ExperimentError(
                f"{where}: condition {c.label!r} does not sweep {missing[0]!r} (it sweeps "
                f"{swept}): a map needs both keys swept in every condition, sweep = "
                f'{{ "{axes[0]}" = [...], "{axes[1]}" = [...] }}'
            )


def is_map(experiment: Experiment) -> bool:
    """Whether the experiment's page is an incentive map (``[report] map``)."""
    return bool((experiment.report or {}).get("map"))


def _condition(entry: dict[str, Any], top_seeds: Any, where: str) -> Condition:
    label = entry.pop("label", None)
    if not label:
        raise ExperimentError(f'{where}: give the condition a label = "..."')
    where = f"{where} ({label!r})"
    seeds = _seeds(entry.pop("seeds", top_seeds), f"{where}.seeds")
    group = entry.pop("group", "")
    sweep = entry.pop(SWEPT, ())
    if "env" in entry and "layout" in entry:
        raise ExperimentError(f"{where}: give env or layout, not both")
    kwargs = entry
    try:
        config = TrainConfig(**kwargs, seed=seeds[0]).validate()
    except (ConfigError, InterventionError, LayoutError) as err:
        raise ExperimentError(f"{where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ExperimentError(f"{where}: {err}") from None
    return Condition(label, config.with_seed(0), seeds, group, sweep)


def single_condition_experiment(
    label: str, config: TrainConfig, seeds: Sequence[int], title: str
) -> Experiment:
    """The experiment of ``offswitch train``: one condition over some seeds."""
    return Experiment(
        name="train",
        title=title,
        description="",
        conditions=[Condition(label, config.with_seed(0), tuple(seeds))],
    )
