"""`python -m acexp resume=<run dir>`: continue a run from its latest checkpoint.

The run continues in its own directory, with its own saved config (`.hydra/config.yaml`).
Other overrides are refused, never mixed in: a resumed run is the run that was started.
"""

import json
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from acexp.errors import ConfigError


def run_dir_of(resume: str) -> Path:
    """The run directory named by `resume=`, checked to be one that can be resumed."""
    run_dir = Path(resume).expanduser().resolve()
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise ConfigError(
            f"resume='{resume}' is not a run directory; expected the output directory of an "
            "earlier `python -m acexp` run (it holds .hydra/config.yaml and checkpoints/)"
        )
    saved_config(run_dir)
    metrics = run_dir / "metrics.json"
    try:
        status = json.loads(metrics.read_text()).get("status") if metrics.is_file() else None
    except (OSError, ValueError, AttributeError):
        status = None  # a metrics.json cut short by a kill: the checkpoints tell
    if status == "completed":
        raise ConfigError(f"resume='{resume}': that run has completed; nothing to resume")
    return run_dir


def saved_config(run_dir: Path) -> DictConfig:
    """The config a run saved (`.hydra/config.yaml`); ConfigError if it cannot be read."""
    path = run_dir / ".hydra" / "config.yaml"
    try:
        cfg = OmegaConf.load(path)
    except (OSError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot read the run's saved config {path}: {detail}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"the run's saved config {path} is not a mapping of settings")
    return cfg


def resume_argv(args: list[str]) -> list[str]:
    """Hydra arguments that resume the run named by `resume=<dir>` in `args`, or `args` as is.

    The run's directory becomes Hydra's output directory; Hydra writes no new `.hydra/`
    there, so the run's own config and overrides stay as they were.
    """
    resume = [a for a in args if a.startswith("resume=")]
    if not resume or resume[0] == "resume=null":
        return args
    others = [a for a in args if a not in resume]
    if others or len(resume) > 1:
        raise ConfigError(
            f"{resume[0]} takes no other arguments (got: {' '.join(others or resume[1:])}); "
            "a resumed run keeps its saved config"
        )
    run_dir = _quoted(run_dir_of(resume[0].removeprefix("resume=")))
    return [f"resume={run_dir}", f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


def _quoted(path: Path) -> str:
    """A Hydra override value: sweep job directories hold '=' and ',' (arch=shared,seed=1)."""
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_run(resume: str) -> tuple[Path, DictConfig, dict]:
    """The run's directory, its saved config and its newest readable checkpoint."""
    from acexp.runtime.checkpoint import (
        latest_checkpoint,  # torch, imported late: see acexp/__main__.py
    )

    run_dir = run_dir_of(resume)
    found = latest_checkpoint(run_dir / "checkpoints")
    if found is None:
        raise ConfigError(
            f"resume='{resume}': no readable checkpoint in {run_dir / 'checkpoints'}; the run "
            "was stopped before its first checkpoint (checkpoint.every_steps) and must restart"
        )
    path, state = found
    cfg = saved_config(run_dir)
    cfg.resume = None
    return run_dir, cfg, state | {"path": str(path)}
