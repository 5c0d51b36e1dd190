"""Finding a sweep's runs and reading what they wrote: overrides, metrics.json, config, events.

A run is found by its `.hydra/overrides.yaml`; runs that differ only in their seed form a group.
Nothing here computes a statistic (`stats`, `survival`, `effects` do).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from acexp.analysis import stats
from acexp.runtime.job_end import resume_command
from acexp.sweeps.jobs import job_dirs

RETURN_TAG = "charts/episodic_return"
EPISODES_TAG = "charts/episodes"  # episodes so far: how many ended on each logged step
SOLVE_METRIC = "steps_to_solve"  # runs that record it can tell when they solved
EVAL_METRIC = "eval_return"  # only runs with evaluation on (eval.every_steps > 0) record it
PARAMETERS_METRIC = "parameters"  # runs written before it existed lack it
UNSET = "(not set)"  # a swept key's value in a run whose overrides do not name it


class ReportError(Exception):
    """Bad input that the CLI reports as one line and exit code 2."""


@dataclass
class Run:
    """One job directory: its overrides and, if it has written one, its metrics.json."""

    path: Path
    overrides: list[str]
    status: str  # completed | interrupted | failed | skipped | any unknown status string
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def resume(self) -> str:
        """The command that continues this run from its last checkpoint: an interrupted run's,
        or the one a failed run's metrics.json names (a batch member whose worker died); empty
        for other runs."""
        if "resume" in self.metrics:
            return str(self.metrics["resume"])
        # list_checkpoints's pattern: acexp.runtime.checkpoint would import torch for a glob
        if self.status == "interrupted" and any(self.path.glob("checkpoints/step_*.pt")):
            return resume_command(self.path)
        return ""

    @property
    def label(self) -> str:
        return stats.group_label(self.overrides)

    @property
    def settings(self) -> dict[str, str]:
        """The run's values by config key, without the seed and Hydra's own keys."""
        pairs = (o.split("=", 1) for o in stats.group_overrides(self.overrides) if "=" in o)
        return {stats.override_key(k): v for k, v in pairs}

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's composed config (`.hydra/config.yaml`); empty when it has none."""
        try:
            loaded = yaml.safe_load((self.path / ".hydra" / "config.yaml").read_text())
        except (OSError, yaml.YAMLError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def stopped_early(self, longest: float | None = None) -> str:
        """Why a completed run ended before its env-step budget ("solved", "episode cap",
        "stopped early"), or "" when it ran its budget.

        Runs stop at a budget on a rollout's boundary, so budgets end a few steps apart; only
        an end before the configured `total_steps` counts. Without a config (`longest`: the
        longest run of its group) a run counts as stopped when it solved before that.
        """
        steps = self.metrics.get("env_steps")
        budget = self.config.get("total_steps", longest)
        if self.status != "completed" or steps is None or not isinstance(budget, int | float):
            return ""
        if steps >= budget or (not self.config and not self.metrics.get("solved")):
            return ""
        if self.metrics.get("solved"):
            return "solved"
        cap = (self.config.get("algo") or {}).get("max_episodes")
        episodes = self.metrics.get("episodes")
        if isinstance(cap, int) and episodes is not None and episodes >= cap:
            return "episode cap"
        return "stopped early"


@dataclass
class Group:
    """All jobs of one group with the summary of its completed runs."""

    label: str
    overrides: tuple[str, ...]
    runs: list[Run]
    summary: stats.RunSummary

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)


def _last_line(text: str) -> str:
    """Last non-empty line of an error (the exception message of a traceback), one line only."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "(no error message)"


def load_run(job_dir: Path) -> Run:
    """Read one job directory; a missing or unreadable metrics.json marks the run skipped."""
    overrides_path = job_dir / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.safe_load(overrides_path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"cannot read {overrides_path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(overrides, list):
        raise ReportError(f"{overrides_path} is not a YAML list of overrides")
    overrides = [str(o) for o in overrides]
    metrics_path = job_dir / "metrics.json"
    if not metrics_path.is_file():
        return Run(job_dir, overrides, "skipped", note="no metrics.json (running or crashed)")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return Run(job_dir, overrides, "skipped", note=f"unreadable metrics.json: {exc}")
    status = str(metrics.get("status", "unknown"))
    note = _last_line(metrics.get("error", "")) if status == "failed" else ""
    return Run(job_dir, overrides, status, metrics, note)


def find_runs(sweep_dir: Path) -> list[Run]:
    """All runs under `sweep_dir`, found by `.hydra/overrides.yaml` at any depth."""
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep directory does not exist: {sweep_dir}")
    runs = [load_run(d) for d in job_dirs(sweep_dir)]
    if not runs:
        raise ReportError(f"no runs (.hydra/overrides.yaml) found under {sweep_dir}")
    return runs


def group_runs(runs: Sequence[Run], seed: int = 0) -> list[Group]:
    """Group runs by overrides minus seed and summarise each group's completed runs.

    Overrides that every group shares are left out of the group labels (see `common_line`).
    """
    common = stats.common_overrides([stats.group_overrides(r.overrides) for r in runs])
    by_label: dict[str, list[Run]] = {}
    for run in runs:
        by_label.setdefault(stats.group_label(run.overrides, drop=common), []).append(run)
    groups = []
    for label in sorted(by_label):
        members = by_label[label]
        completed = [r.metrics for r in members if r.status == "completed"]
        summary = stats.summarize_runs(completed, seed=seed)
        groups.append(Group(label, stats.group_overrides(members[0].overrides), members, summary))
    return groups


def completed_runs(group: Group) -> list[Run]:
    return [r for r in group.runs if r.status == "completed"]


def recorded(groups: Sequence[Group], key: str) -> bool:
    """Whether any completed run's metrics.json has `key` (even if null): the table then shows
    its column, which would otherwise be all `—`."""
    return any(key in r.metrics for g in groups for r in completed_runs(g))


def has_solve_times(groups: Sequence[Group]) -> bool:
    """Whether any completed run records when it solved (the key, even if null)."""
    return recorded(groups, SOLVE_METRIC)


def stop_reasons(group: Group) -> dict[int, str]:
    """Why each completed run of `group` that ended before its budget did so, by `id(run)`."""
    runs = completed_runs(group)
    longest = max((float(r.metrics.get("env_steps") or 0) for r in runs), default=0.0)
    reasons = {id(r): r.stopped_early(longest) for r in runs}
    return {k: why for k, why in reasons.items() if why}


def tensorboard_name(run: Run, sweep_dir: Path) -> str:
    """The run's name in `tensorboard --logdir <sweep dir>`: its directory below it; a run
    that is the directory itself goes by its folder's name (as under `--logdir` its parent)."""
    rel = run.path.relative_to(sweep_dir) if run.path != sweep_dir else Path(".")
    return run.path.name if rel == Path(".") else rel.as_posix()


def legend_name(group: Group, sweep_dir: Path) -> str:
    """A group's name in plots, from its runs' TensorBoard names: one run keeps its name; the
    seeds of a group the name they share once `seed=` is taken out, else the group's label."""
    names = [tensorboard_name(r, sweep_dir) for r in group.runs]
    if len(names) == 1:
        return names[0]
    stripped = {",".join(p for p in n.split(",") if not p.startswith("seed=")) for n in names}
    return stripped.pop() if len(stripped) == 1 and "" not in stripped else group.label


def load_events(job_dir: Path) -> Any:
    """Every scalar of a run's event files (TensorBoard's own reader, nothing sampled away)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def read_returns(job_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, mean episodic return, episodes) per logged point of one run.

    Each point is the mean of the episodes that ended on that env step; their count comes from
    the running episode count (runs logged before it existed count one episode per point).
    """
    acc = load_events(job_dir)
    tags = acc.Tags().get("scalars", [])
    if RETURN_TAG not in tags:
        return np.empty(0), np.empty(0), np.empty(0, dtype=int)
    events = acc.Scalars(RETURN_TAG)
    steps = np.array([e.step for e in events], float)
    values = np.array([e.value for e in events], float)
    counts = np.ones(steps.size, dtype=int)
    if EPISODES_TAG in tags:
        total = {e.step: e.value for e in acc.Scalars(EPISODES_TAG)}
        if all(step in total for step in steps):
            cumulative = np.array([total[step] for step in steps])
            counts = np.maximum(np.diff(cumulative, prepend=0).round(), 1).astype(int)
    return steps, values, counts
