"""Which runs of a sweep can train together as one batch, and training them.

Runs whose configs differ only in member settings (declared `member=True` in the schema,
acexp/config/schema.py: per-member scalars such as the seed and the learning rates) change no
tensor shape and no control flow, so they can share one batched computation: every weight
carries a leading member dimension, and each member keeps its own seed, scalars, statistics and
run directory.
"""

import json
import math
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from acexp.config.schema import settings
from acexp.config.validate import validate
from acexp.errors import ConfigError, NonFiniteError, record_traceback
from acexp.run import train_members


def member_keys(cfg: DictConfig) -> list[str]:
    """The settings of this config that may differ between the members of one batch."""
    return [key for key, setting in settings(cfg).items() if setting.member]


def batch_key(cfg: DictConfig) -> str:
    """What must be equal for runs to share a batch: the config without its member settings;
    a run that sets a `trains_alone` setting (PPO's target_kl) shares it with none."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key, setting in settings(cfg).items():
        *parents, leaf = key.split(".")
        node = container
        for parent in parents:
            node = node.get(parent, {})
        if setting.member:
            node.pop(leaf, None)
        elif setting.trains_alone and node.get(leaf) is not None:
            container["batch_of_one"] = str(id(cfg))
    return json.dumps(container, sort_keys=True, default=str)


def group_batches(cfgs: list[DictConfig], max_size: int, min_batches: int = 1) -> list[list[int]]:
    """Indices of `cfgs` grouped into batches of compatible runs, each at most `max_size`,
    and, where groups are large enough, at least `min_batches` of them (one per process
    side by side: on CPU two batches of 16 on two cores train faster than one of 32)."""
    groups: dict[str, list[int]] = {}
    for index, cfg in enumerate(cfgs):
        groups.setdefault(batch_key(cfg), []).append(index)
    members = list(groups.values())
    parts = [math.ceil(len(m) / max_size) for m in members]
    while sum(parts) < min_batches:
        largest = max(range(len(members)), key=lambda g: len(members[g]) / parts[g])
        if len(members[largest]) <= parts[largest]:
            break  # every batch is a single run
        parts[largest] += 1
    batches = [
        [int(i) for i in chunk]
        for group, count in zip(members, parts, strict=True)
        for chunk in np.array_split(group, count)
    ]
    return sorted(batches)  # in the sweep's job order: the jobs listed first start first


def validate_members(cfgs: list[DictConfig], out_dirs: list[Path]) -> None:
    """Validate every member before anything is built; the error names the job."""
    for cfg, out_dir in zip(cfgs, out_dirs, strict=True):
        try:
            validate(cfg)
        except ConfigError as exc:
            raise ConfigError(f"job {Path(out_dir).name}: {exc}") from None
        if cfg.get("resume"):
            raise ConfigError(f"job {Path(out_dir).name}: resume= continues one run, not a batch")
    keys = {batch_key(cfg) for cfg in cfgs}
    if len(keys) > 1:
        raise ConfigError(
            "these runs cannot share a batch: they differ in more than "
            + ", ".join(member_keys(cfgs[0]))
        )


def run_batch(cfgs: list[DictConfig], out_dirs: list[Path]) -> list[dict]:
    """Train compatible runs as one batch; each member writes its own run directory.

    Returns each member's metrics (as its `metrics.json`); a member that failed has status
    `failed` and its error, and the others went on. The traceback of an error nobody foresaw
    (not a NaN, not bad input) goes into that member's log file, as a single run's does.
    """
    validate_members(cfgs, out_dirs)
    trainer = train_members(cfgs, [Path(d) for d in out_dirs])
    for error, out_dir in zip(trainer.errors, out_dirs, strict=True):
        if error is not None and not isinstance(error, ConfigError | NonFiniteError):
            record_traceback(error, run_dir=Path(out_dir))
    return [dict(metrics or {"status": "failed"}) for metrics in trainer.results]
