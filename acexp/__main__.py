"""`python -m acexp [overrides]`: a thin Hydra entry point around `acexp.run.run`."""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from acexp.errors import ConfigError, NonFiniteError
from acexp.run import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the configured objective, which sweepers such as Optuna maximise or minimise."""
    try:
        metrics = run(cfg)
    except (ConfigError, NonFiniteError) as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra records the failed job and goes on with the others
        print(f"acexp: error: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    return metrics.get(cfg.objective)


if __name__ == "__main__":
    main()
