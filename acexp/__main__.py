"""`python -m acexp [overrides]`: a thin Hydra entry point around `acexp.run.run`."""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from acexp.errors import ConfigError, NonFiniteError
from acexp.objective import objective
from acexp.run import record_failure, run


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the configured objective (acexp/objective.py), which sweepers such as Optuna use."""
    try:
        metrics = run(cfg)
    except Exception as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            record_failure(exc)  # the sweep report lists the job as failed, with this error
            raise  # Hydra records the failed job and goes on with the others
        if not isinstance(exc, ConfigError | NonFiniteError):
            raise  # a bug: keep its traceback
        print(f"acexp: error: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    return objective(metrics, cfg)


if __name__ == "__main__":
    main()
