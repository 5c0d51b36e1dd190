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
        self.out_dir = out_dir
        self._writer: SummaryWriter | None = None
        self.purge_step: int | None = None
        self.every_steps = every_steps
        self.console_every_seconds = console_every_seconds
        self.next_log_step = 0
        self.last_console = time.perf_counter()
        self.last_sps_time = time.perf_counter()
        self.last_sps_step = 0
        show_bar = sys.stderr.isatty() if progress == "auto" else bool(progress)
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True) if show_bar else None

    @property
    def writer(self) -> SummaryWriter:
        """Opened at the first write, so that a resumed run can set `purge_step` before."""
        if self._writer is None:
            if self.purge_step is not None:
                _wait_to_sort_last(self.out_dir)
            self._writer = SummaryWriter(log_dir=str(self.out_dir), purge_step=self.purge_step)
        return self._writer

    def state_dict(self) -> dict:
        return {"next_log_step": self.next_log_step}

    def load_state_dict(self, state: dict, resume_step: int) -> None:
        """Continue a run's curves after its checkpoint at `resume_step`.

        TensorBoard discards the events at steps >= purge_step written before this one:
        those the killed run wrote after its checkpoint. Events at `resume_step` itself were
        written before the checkpoint and are kept.
        """
        self.next_log_step = state["next_log_step"]
        self.last_sps_step = resume_step
        self.purge_step = resume_step + 1

    def episode(self, episode_return: float, length: int, step: int) -> None:
        self.writer.add_scalar("charts/episodic_return", episode_return, step)
        self.writer.add_scalar("charts/episodic_length", length, step)

    def evaluation(self, step: int, returns: list[float]) -> None:
        """The greedy policy's evaluation returns: their mean and spread."""
        values = torch.tensor(returns, dtype=torch.float64)
        self.writer.add_scalar("eval/return", float(values.mean()), step)
        self.writer.add_scalar("eval/return_std", float(values.std(unbiased=False)), step)
        self.writer.add_scalar("eval/return_min", float(values.min()), step)
        self.writer.add_scalar("eval/return_max", float(values.max()), step)

    def due(self, step: int) -> bool:
        """Whether update statistics are due at this step (keeps host syncs off the hot path)."""
        return step >= self.next_log_step

    def update(
        self,
        step: int,
        losses: dict[str, torch.Tensor],
        grad_norms: dict[str, tuple[float, float]],
        lrs: dict[str, float],
        running_return: float | None,
    ) -> None:
        """Loss, gradient-norm (before, after clipping), learning-rate, running-return and SPS
        scalars, when `due(step)`."""
        self.next_log_step = step + self.every_steps
        if running_return is not None:
            self.writer.add_scalar("charts/running_return", running_return, step)
        for name, value in losses.items():
            self.writer.add_scalar(f"losses/{name}", float(value), step)
        for opt, pair in grad_norms.items():
            suffix = "" if opt == "joint" else f"_{opt}"
            before, after = pair
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

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self._writer is not None:
            self._writer.close()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and value == value  # drops None and NaN


def _wait_to_sort_last(out_dir: Path) -> None:
    """TensorBoard reads a directory's event files in name order, and a name starts with the
    second it was created in: a resumed run's file must not share its predecessor's second."""
    stamps = [int(p.name.split(".")[3]) for p in out_dir.glob("events.out.tfevents.*")]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.05)
