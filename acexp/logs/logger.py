"""TensorBoard scalars, HParams, and console progress for one run.

Tags follow CleanRL's prefixes: charts/ for episodes, losses/ for each loss, train/ for
optimizer state, perf/ for speed. The x axis is always the env-step count.

TensorBoard keeps one value per tag and step, and with vector envs several episodes often end
on the same env step. So the episodes that ended on one step are written as one point at that
step: their mean return (`charts/episodic_return`), its min and max, their mean length, and
the count of episodes so far (`charts/episodes`, whose last value is metrics.json's
`episodes`). The report reads the same points.
"""

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from acexp.errors import SaveError
from acexp.logs.hparams import metric_values, session_summaries

log = logging.getLogger("acexp")

LOG_POINTS = 250  # log.every_steps=auto: about this many points per curve over total_steps
_job: str | None = None  # the sweep job whose console lines these are (see `job_name`)


def resolve_every_steps(every_steps: int | str, total_steps: int) -> int:
    """Env steps between update scalars; `auto` gives about LOG_POINTS points per run."""
    if every_steps == "auto":
        return max(1, int(total_steps) // LOG_POINTS)
    return int(every_steps)


class _JobPrefix(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.prefix = f"[{name}] "

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.prefix + record.getMessage(), ()
        return True


@contextmanager
def job_name(name: str) -> Iterator[None]:
    """Within the block, the run's console lines (log lines, progress bar) start with [name]:
    the jobs of a sweep share one terminal, and each line says whose it is."""
    global _job
    prefix = _JobPrefix(name)
    log.addFilter(prefix)
    _job = name
    try:
        yield
    finally:
        log.removeFilter(prefix)
        _job = None


class RunLogger:
    """Writes the run's event file into `out_dir` and reports progress on the console."""

    def __init__(
        self,
        out_dir: Path,
        total_steps: int,
        every_steps: int | str = "auto",
        console_every_seconds: float = 10.0,
        progress: str | bool = "auto",
    ) -> None:
        self.out_dir = out_dir
        self._writer: SummaryWriter | None = None
        self.refused = False  # a write failed (a full disk): the run fails and says so itself
        self.purge_step: int | None = None
        self.every_steps = resolve_every_steps(every_steps, total_steps)
        self.console_every_seconds = console_every_seconds
        self.next_log_step = 0
        self.last_console = time.perf_counter()
        self.last_sps_time = time.perf_counter()
        self.last_sps_step = 0
        self.last_running_step: int | None = None  # where charts/running_return was last written
        self.episodes: int | None = 0  # None: resumed from a checkpoint that did not count them
        self._pending: list[tuple[float, int]] = []  # (return, length) ended at _pending_step
        self._pending_step = 0
        show_bar = sys.stderr.isatty() if progress == "auto" else bool(progress)
        self.bar = (
            tqdm(total=total_steps, unit="step", dynamic_ncols=True, desc=_job)
            if show_bar
            else None
        )

    @property
    def writer(self) -> SummaryWriter:
        """Opened at the first write, so that a resumed run can set `purge_step` before."""
        if self._writer is None:
            if self.purge_step is not None:
                _wait_to_sort_last(self.out_dir)
            self._writer = SummaryWriter(log_dir=str(self.out_dir), purge_step=self.purge_step)
        return self._writer

    def state_dict(self) -> dict:
        self._write_episodes()
        return {"next_log_step": self.next_log_step, "episodes": self.episodes}

    def load_state_dict(self, state: dict, resume_step: int) -> None:
        """Continue a run's curves after its checkpoint at `resume_step`.

        TensorBoard discards the events at steps >= purge_step written before this one:
        those the killed run wrote after its checkpoint. Events at `resume_step` itself were
        written before the checkpoint and are kept.
        """
        self.next_log_step = state["next_log_step"]
        self.episodes = state.get("episodes")
        self.last_sps_step = resume_step
        self.purge_step = resume_step + 1

    def episode(self, episode_return: float, length: int, step: int) -> None:
        """Buffer a finished episode; the episodes of one step are written together."""
        if self._pending and step != self._pending_step:
            self._write_episodes()
        self._pending_step = step
        self._pending.append((episode_return, length))

    def _write_episodes(self) -> None:
        if not self._pending:
            return
        returns = [r for r, _ in self._pending]
        count = len(returns)
        scalars = {
            "charts/episodic_return": sum(returns) / count,
            "charts/episodic_return_min": min(returns),
            "charts/episodic_return_max": max(returns),
            "charts/episodic_length": sum(n for _, n in self._pending) / count,
        }
        if self.episodes is not None:
            self.episodes += count
            scalars["charts/episodes"] = self.episodes
        self._write(self._pending_step, scalars)
        self._pending.clear()

    def _write(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars at one step as one event: a tenth of the cost of one add_scalar each."""
        summary = Summary(
            value=[Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        )
        try:
            self.writer.file_writer.add_summary(summary, step)
        except OSError:
            self.refused = True
            raise

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
        scalars: dict[str, float] = {}
        if running_return is not None:
            scalars["charts/running_return"] = running_return
            self.last_running_step = step
        for name, value in losses.items():
            scalars[f"losses/{name}"] = float(value)
        for opt, (before, after) in grad_norms.items():
            suffix = "" if opt == "joint" else f"_{opt}"
            scalars[f"train/grad_norm_before_clip{suffix}"] = before
            scalars[f"train/grad_norm_after_clip{suffix}"] = after
        for opt, lr in lrs.items():
            scalars[f"train/lr{'' if opt == 'joint' else f'_{opt}'}"] = lr
        now = time.perf_counter()
        scalars["perf/sps"] = (step - self.last_sps_step) / max(now - self.last_sps_time, 1e-9)
        self.last_sps_time, self.last_sps_step = now, step
        self._write(step, scalars)

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
        """The run's session for TensorBoard's HPARAMS tab (same event file, no subdir), and
        its final metrics as `result/<key>` scalars at its last step.

        The columns and metrics of the tab are declared once per sweep (acexp/logs/hparams.py): a
        single run's declaration would hide the other runs' settings.
        """
        self._write_episodes()
        step = int(metrics.get("env_steps") or 0)
        completed = metrics.get("status", "completed") == "completed"
        for summary in session_summaries(params, completed):
            self.writer.file_writer.add_summary(summary)
        scalars = metric_values(metrics)
        if metrics.get("running_return") is not None and self.last_running_step != step:
            scalars["charts/running_return"] = metrics["running_return"]  # reaches the end
        self._write(step, scalars)

    def flush(self) -> None:
        """Write what is buffered; SaveError if the disk refuses it."""
        try:
            self._write_episodes()
            if self._writer is not None:
                self._writer.flush()
        except OSError as exc:
            self.refused = True
            raise SaveError(
                f"cannot write the TensorBoard events in {self.out_dir}: {exc.strerror or exc}"
            ) from exc

    def close(self) -> None:
        """Close the bar and the event file; a write that fails now is only warned about,
        since close also runs while a run is failing for another reason."""
        if self.bar is not None:
            self.bar.close()
        try:
            self._write_episodes()
            if self._writer is not None:
                self._writer.close()
        except OSError as exc:  # after a refused write, the run's own error line says it
            level = logging.INFO if self.refused else logging.WARNING
            log.log(level, "the TensorBoard events in %s are incomplete: %s", self.out_dir, exc)


def _wait_to_sort_last(out_dir: Path) -> None:
    """TensorBoard reads a directory's event files in name order, and a name starts with the
    second it was created in: a resumed run's file must not share its predecessor's second."""
    stamps = [int(p.name.split(".")[3]) for p in out_dir.glob("events.out.tfevents.*")]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.05)
