"""What TensorBoard's HPARAMS tab shows: each run's settings, typed, against its final metrics.

A run writes its own session (its settings) into its event file. The columns and the metrics
of the tab come from one *experiment* summary: given none, TensorBoard builds the columns from
all sessions and ticks the first five scalar tags it finds (charts/...); given one, it uses that
one's columns and metrics, and only that one, for the whole log directory. So the experiment
is written once per sweep, from the configs and metrics of all its runs (`write_experiment`,
called when a sweep ends), into its first run's directory: TensorBoard lists every directory
that holds an event file as a run, and a file of its own would be an empty run. A single run
writes none.

TensorBoard reads a session's metrics only from scalar series of its run, so each final metric
is also a one-point scalar, `result/<key>`: a tag group that sorts after the curves' groups
(charts, eval, losses, perf), where the SCALARS and TIME SERIES dashboards leave it collapsed.

Built with TensorBoard's own hparams protos (`api_pb2`, `plugin_data_pb2`, `metadata`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from acexp.config.fields import Setting, plain_type
from acexp.config.schema import settings
from acexp.sweeps.jobs import job_dirs

HParam = bool | int | float | str

# metrics.json keys declared as the tab's metrics, in this order (it ticks the first five);
# other numeric keys a run reports follow, by name. Each is the scalar `result/<key>`.
METRICS: dict[str, str] = {
    "final_return": "mean return of the last 100 training episodes",
    "solved": "1 if the running return passed the env's reward threshold, else 0",
    "steps_to_solve": "env steps until solved (blank: not solved)",
    "episodes_to_solve": "episodes until solved (blank: not solved)",
    "running_return": "EMA 0.05 of episode returns at the end",
    "seconds_to_solve": "training wall time until solved (blank: not solved)",
    "episodes": "training episodes finished",
    "env_steps": "env steps taken",
    "wall_seconds": "training wall time",
    "sps": "env steps per second",
    "eval_return": "greedy policy's mean return at the end (with evaluation on)",
    "parameters": "trainable parameters of the model",
}
METRIC_PREFIX = "result/"  # a group the dashboards leave collapsed: see above
EXPERIMENT_SUFFIX = ".acexp-hparams"  # the event file that holds a sweep's experiment
MAX_DISCRETE = 12  # numbers with at most this many values get a checkbox filter


def _flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def hyperparameters(cfg: DictConfig) -> dict[str, HParam]:
    """Every setting of the run that can change what it learns, under its command-line name,
    with the type its schema declares (acexp/config/schema.py).

    Numbers, booleans and strings keep their type; lists become strings ("[64, 64]"), and so
    do numbers that name rather than measure (`label`: the seed). Left out: bookkeeping
    (`hparam=False`: checkpoint.*, log.*, resume, objective), null settings (a feature that is
    off) and settings that do not apply to this run (`applies`, e.g. `optim.actor_lr` under
    `optim=joint`). Keys inside a mapping setting (env.kwargs.*) count as that setting.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    flat = _flatten(container)
    found = settings(cfg)
    params: dict[str, HParam] = {}
    for key, value in flat.items():
        setting = found.get(key) or next(
            (s for k, s in found.items() if key.startswith(f"{k}.")), None
        )
        if value is None or setting is not None and not _applies(setting, flat):
            continue
        params[key] = _typed(value, setting)
    return params


def _applies(setting: Setting, flat: dict[str, Any]) -> bool:
    return setting.hparam and (setting.applies is None or setting.applies(flat))


def _typed(value: Any, setting: Setting | None) -> HParam:
    """The value as its setting's type: a float setting saved as 1 by an older acexp is 1.0;
    text for lists and labels; a key the schema does not declare keeps its own type."""
    if not isinstance(value, bool | int | float | str) or setting is not None and setting.label:
        return str(value)
    if setting is not None and plain_type(setting.type) is float and not isinstance(value, bool):
        return float(value) if isinstance(value, int) else value
    return value


def _value(value: HParam) -> Any:
    """A google.protobuf.Value of the hparam's own type (bool before int: True is an int)."""
    from google.protobuf import struct_pb2

    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int | float):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=str(value))


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    summary = Summary()
    summary.value.add(
        tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
    )
    return summary


def session_summaries(params: Mapping[str, HParam], completed: bool) -> tuple[Summary, Summary]:
    """The session start (the run's settings) and end (its status) summaries of one run."""
    start = plugin_data_pb2.SessionStartInfo()
    for key, value in params.items():
        start.hparams[key].CopyFrom(_value(value))
    status = api_pb2.STATUS_SUCCESS if completed else api_pb2.STATUS_FAILURE
    end = plugin_data_pb2.SessionEndInfo(status=status)
    return (
        _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(
            session_start_info=start)),
        _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(
            session_end_info=end)),
    )  # fmt: skip


def metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of metrics.json (booleans as 0/1) as `result/<key>` scalars."""
    values = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float) and not (
            isinstance(value, float) and math.isnan(value)
        ):
            values[f"{METRIC_PREFIX}{key}"] = float(value)
    return values


def hparam_info(name: str, values: list[HParam]) -> api_pb2.HParamInfo:
    """One column: its type (string where runs disagree on it), domain, and whether it differs.

    Strings and booleans get their values as a discrete domain (checkboxes); numbers too when
    there are few of them (a grid sweep), else their [min, max] interval (a random search).
    """
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v))
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, int | float) else str
             for v in distinct}  # fmt: skip
    info = api_pb2.HParamInfo(name=name, differs=len(distinct) > 1)
    if kinds == {float}:
        info.type = api_pb2.DATA_TYPE_FLOAT64
        if len(distinct) <= MAX_DISCRETE:
            info.domain_discrete.extend(float(v) for v in distinct)
        else:
            info.domain_interval.min_value = float(min(distinct))
            info.domain_interval.max_value = float(max(distinct))
        return info
    if kinds == {bool}:
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(distinct)
        return info
    info.type = api_pb2.DATA_TYPE_STRING
    info.domain_discrete.extend(sorted({str(v) for v in distinct}))
    return info


def experiment_summary(
    runs_params: Iterable[Mapping[str, HParam]], metric_keys: Iterable[str]
) -> Summary:
    """The experiment of a sweep: a column per setting that differs between its runs (all of
    them when none does), and the metrics.

    The tab shows five columns at first, those that differ first: a setting every run shares
    would take the place of a metric. Each run's session still holds all its settings.
    """
    columns: dict[str, list[HParam]] = {}
    for params in runs_params:
        for key, value in params.items():
            columns.setdefault(key, []).append(value)
    infos = [hparam_info(name, values) for name, values in sorted(columns.items())]
    declared = [k for k in METRICS if k in metric_keys]
    declared += sorted(set(metric_keys) - set(METRICS))
    experiment = api_pb2.Experiment(
        hparam_infos=[info for info in infos if info.differs] or infos,
        metric_infos=[
            api_pb2.MetricInfo(
                name=api_pb2.MetricName(tag=f"{METRIC_PREFIX}{key}"),
                display_name=key,
                description=METRICS.get(key, ""),
            )
            for key in declared
        ],
    )
    return _summary(
        metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)
    )


def write_experiment(root: Path) -> Path | None:
    """Declare the HPARAMS columns and metrics for every run under `root` (a sweep directory),
    in an event file of its first run's directory.

    Replaces the experiment an earlier call wrote, so runs added to a sweep are included.
    Returns the event file, or None when `root` holds no runs.
    """
    from torch.utils.tensorboard.writer import FileWriter

    jobs = job_dirs(root)
    if not jobs:
        return None
    runs_params, metric_keys = [], set(METRICS)
    for job in jobs:
        runs_params.append(hyperparameters(OmegaConf.load(job / ".hydra" / "config.yaml")))
        metrics_path = job / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text())
            metric_keys |= {k.removeprefix(METRIC_PREFIX) for k in metric_values(metrics)}
    for old in root.rglob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"):
        old.unlink()
    writer = FileWriter(str(jobs[0]), filename_suffix=EXPERIMENT_SUFFIX)
    writer.add_summary(experiment_summary(runs_params, metric_keys))
    writer.close()
    (path,) = jobs[0].glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}")
    return path
