"""TensorBoard scalars, HParams, and console progress for one run.

Tags follow CleanRL's prefixes: charts/ for episodes, losses/ for each loss, train/ for
optimizer state, perf/ for speed. The x axis is always the env-step count.
"""

import logging
import sys
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from tqdm import tqdm

log = logging.getLogger("acexp")


class RunLogger:
    """Writes the run's event file into `out_dir` and reports progress on the console."""

    def __init__(
        self,
        out_dir: Path,
        total_steps: int,
        every_steps: int = 2000,
        console_every_seconds: float = 10.0,
        progress: str | bool = "auto",
    ) -> None:
        self.writer = SummaryWriter(log_dir=str(out_dir))
        self.every_steps = every_steps
        self.console_every_seconds = console_every_seconds
        self.next_log_step = 0
        self.last_console = time.perf_counter()
        self.last_sps_time = time.perf_counter()
        self.last_sps_step = 0
        show_bar = sys.stderr.isatty() if progress == "auto" else bool(progress)
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True) if show_bar else None

    def episode(self, episode_return: float, length: int, running_return: float, step: int) -> None:
        self.writer.add_scalar("charts/episodic_return", episode_return, step)
        self.writer.add_scalar("charts/episodic_length", length, step)
        self.writer.add_scalar("charts/running_return", running_return, step)

    def due(self, step: int) -> bool:
        """Whether update statistics are due at this step (keeps host syncs off the hot path)."""
        return step >= self.next_log_step

    def update(
        self,
        step: int,
        losses: dict[str, torch.Tensor],
        grad_norms: dict[str, torch.Tensor],
        lrs: dict[str, float],
    ) -> None:
        """Loss, gradient-norm, learning-rate and SPS scalars; call when `due(step)`."""
        self.next_log_step = step + self.every_steps
        for name, value in losses.items():
            self.writer.add_scalar(f"losses/{name}", float(value), step)
        for opt, pair in grad_norms.items():
            suffix = "" if opt == "joint" else f"_{opt}"
            before, after = pair.tolist()
            self.writer.add_scalar(f"train/grad_norm_before_clip{suffix}", before, step)
            self.writer.add_scalar(f"train/grad_norm_after_clip{suffix}", after, step)
        for opt, lr in lrs.items():
            suffix = "" if opt == "joint" else f"_{opt}"
            self.writer.add_scalar(f"train/lr{suffix}", lr, step)
        now = time.perf_counter()
        sps = (step - self.last_sps_step) / max(now - self.last_sps_time, 1e-9)
        self.last_sps_time, self.last_sps_step = now, step
        self.writer.add_scalar("perf/sps", sps, step)

    def progress(self, step: int, running_return: float | None, sps: float) -> None:
        """A bar on a terminal (redrawn at most 5 times a second), else a periodic log line."""
        now = time.perf_counter()
        period = 0.2 if self.bar is not None else self.console_every_seconds
        if now - self.last_console < period:
            return
        self.last_console = now
        shown = "n/a" if running_return is None else f"{running_return:.1f}"
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(f"running_return={shown} sps={sps:,.0f}", refresh=False)
            self.bar.refresh()
        else:
            log.info("step %d  running_return %s  sps %.0f", step, shown, sps)

    def hparams(self, params: dict, metrics: dict) -> None:
        """Make the run comparable in TensorBoard's HPARAMS tab (same event file, no subdir).

        Only the session summaries are written, not torch's per-run experiment summary: given
        one, TensorBoard shows that single run's hparams for the whole sweep (no value domains,
        nothing marked as differing); without, it builds them from all runs' sessions.
        """
        numeric = {f"hparams/{k}": float(v) for k, v in metrics.items() if _is_number(v)}
        _experiment, session_start, session_end = hparams_summary(params, numeric)
        for summary in (session_start, session_end):
            self.writer.file_writer.add_summary(summary)
        for tag, value in numeric.items():
            self.writer.add_scalar(tag, value, 0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.close()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and value == value  # drops None and NaN
