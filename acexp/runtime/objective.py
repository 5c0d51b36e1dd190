"""Objectives: the number `python -m acexp` returns to a sweeper (Optuna maximises it)."""

from collections.abc import Callable

from omegaconf import DictConfig


def _metric(name: str) -> Callable[[dict, DictConfig], float | None]:
    return lambda metrics, cfg: metrics.get(name)


def neg_steps_to_solve(metrics: dict, cfg: DictConfig) -> float:
    """-(env steps to solve); an unsolved run scores -total_steps, below every solved run."""
    steps = metrics.get("steps_to_solve")
    return -float(steps if steps is not None else cfg.total_steps)


# name -> objective(metrics, cfg); every one is "higher is better".
OBJECTIVES: dict[str, Callable[[dict, DictConfig], float | None]] = {
    "final_return": _metric("final_return"),  # mean return of the last 100 training episodes
    "running_return": _metric("running_return"),  # the tutorial's EMA 0.05 of episode return
    "neg_steps_to_solve": neg_steps_to_solve,  # solve fast: ranks unsolved runs last
}


def objective(metrics: dict, cfg: DictConfig) -> float | None:
    """The value of `cfg.objective` (checked by `validate`) for a finished run."""
    return OBJECTIVES[cfg.objective](metrics, cfg)
