"""Helpers shared by the benchmark scripts: compose the real config and run it in-process."""

import statistics
from pathlib import Path
from tempfile import TemporaryDirectory

from hydra import compose, initialize_config_dir

from acexp.config.overrides import CONF
from acexp.run import run


def run_acexp(*overrides: str) -> dict:
    """Train one configuration (progress bar off) in a throwaway directory; its metrics."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["log.progress=false", *overrides])
    with TemporaryDirectory() as out:
        return run(cfg, out_dir=Path(out))


def median(values: list[float | None]) -> float:
    """Median where an unsolved run (None) counts as infinitely slow."""
    return statistics.median(float("inf") if v is None else v for v in values)
