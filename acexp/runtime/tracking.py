"""Episode bookkeeping: running return, last-100 mean, and when the task was first solved."""

import time
from collections import deque

import numpy as np


class EpisodeStats:
    """Tracks finished training episodes the way the tutorial judges them.

    running_return = ema * episode_return + (1 - ema) * running_return, initialised with the
    first episode's return; solved the first time it exceeds `threshold`.
    """

    def __init__(self, threshold: float | None, ema: float = 0.05, window: int = 100) -> None:
        self.threshold = threshold
        self.ema = ema
        self.recent: deque[float] = deque(maxlen=window)
        self.episodes = 0
        self.running_return: float | None = None
        self.steps_to_solve: int | None = None
        self.episodes_to_solve: int | None = None
        self.seconds_to_solve: float | None = None
        self.clock_start = time.perf_counter()
        self.elapsed_before = 0.0  # seconds trained before a resume

    def start_clock(self) -> None:
        """Call at the first env step: solve times exclude set-up."""
        self.clock_start = time.perf_counter() - self.elapsed_before

    def elapsed(self) -> float:
        return time.perf_counter() - self.clock_start

    @property
    def solved(self) -> bool:
        return self.steps_to_solve is not None

    @property
    def final_return(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def record(self, episode_return: float, env_steps: int) -> None:
        self.episodes += 1
        self.recent.append(episode_return)
        if self.running_return is None:
            self.running_return = episode_return
        else:
            self.running_return = self.ema * episode_return + (1 - self.ema) * self.running_return
        if not self.solved and self.threshold is not None and self.running_return > self.threshold:
            self.steps_to_solve = env_steps
            self.episodes_to_solve = self.episodes
            self.seconds_to_solve = self.elapsed()

    def state_dict(self) -> dict:
        """Plain values for a checkpoint; the clock is saved as seconds elapsed so far."""
        return {
            "recent": list(self.recent),
            "episodes": self.episodes,
            "running_return": self.running_return,
            "steps_to_solve": self.steps_to_solve,
            "episodes_to_solve": self.episodes_to_solve,
            "seconds_to_solve": self.seconds_to_solve,
            "elapsed": self.elapsed(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint; the clock goes on from the saved elapsed time."""
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.episodes = state["episodes"]
        self.running_return = state["running_return"]
        self.steps_to_solve = state["steps_to_solve"]
        self.episodes_to_solve = state["episodes_to_solve"]
        self.seconds_to_solve = state["seconds_to_solve"]
        self.elapsed_before = state["elapsed"]
        self.start_clock()

    def outcome(self) -> str:
        """What "solved" means for this run, for its final line: e.g. `solved (running return
        > 475 at env step 92707)` or `not solved (running return 431.20; solved means > 475)`."""
        if self.threshold is None:
            return "solved: not judged (the env has no reward threshold)"
        if self.solved:
            return f"solved (running return > {self.threshold:g} at env step {self.steps_to_solve})"
        now = "no episode ended" if self.running_return is None else f"{self.running_return:.2f}"
        return f"not solved (running return {now}; solved means > {self.threshold:g})"

    def summary(self) -> dict:
        return {
            "episodes": self.episodes,
            "final_return": self.final_return,
            "running_return": self.running_return,
            "solved": self.solved,
            "steps_to_solve": self.steps_to_solve,
            "episodes_to_solve": self.episodes_to_solve,
            "seconds_to_solve": self.seconds_to_solve,
        }
