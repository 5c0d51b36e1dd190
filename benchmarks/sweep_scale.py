"""Figure 5: an 8-job sweep through the joblib launcher against Hydra's sequential launcher.

Both sweeps run the same 8 jobs (seeds 0-7, fixed step budget, one torch thread per job)
through the real CLI; the figure is sequential wall time / joblib wall time. The two sweeps
alternate `--repeats` times and the median of each is taken, so that a slow spell of the
shared machine does not land on one side only.

    python -m benchmarks.sweep_scale [--steps 400000] [--jobs 2] [--repeats 3]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory


def sweep(out: Path, steps: int, launcher: list[str]) -> float:
    command = [
        sys.executable,
        "-m",
        "acexp",
        "-m",
        "seed=0,1,2,3,4,5,6,7",
        f"total_steps={steps}",
        "stop_on_solve=false",
        "log.progress=false",
        f"hydra.sweep.dir={out}",
        *launcher,
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers (cores)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    joblib_launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"]
    basic, joblib = [], []
    with TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            basic.append(sweep(Path(tmp) / f"basic{i}", args.steps, []))
            joblib.append(sweep(Path(tmp) / f"joblib{i}", args.steps, joblib_launcher))
            print(f"repeat {i}: sequential {basic[-1]:.1f} s, joblib {joblib[-1]:.1f} s")
    basic_s, joblib_s = statistics.median(basic), statistics.median(joblib)
    print(f"sequential launcher  {basic_s:8.1f} s (median of {args.repeats})")
    print(f"joblib launcher      {joblib_s:8.1f} s  ({args.jobs} workers)")
    print(f"speed-up             {basic_s / joblib_s:8.2f} x (target >= 1.7)")


if __name__ == "__main__":
    main()
