"""Figure 5: an 8-job sweep through the joblib launcher against Hydra's sequential launcher.

Both sweeps run the same 8 jobs (seeds 0-7, fixed step budget, one torch thread per job)
through the real CLI; the figure is sequential wall time / joblib wall time.

    python -m benchmarks.sweep_scale [--steps 100000] [--jobs 2]
"""

import argparse
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
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers (cores)")
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        basic = sweep(Path(tmp) / "basic", args.steps, [])
        joblib = sweep(
            Path(tmp) / "joblib",
            args.steps,
            ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"],
        )
    print(f"sequential launcher  {basic:8.1f} s")
    print(f"joblib launcher      {joblib:8.1f} s  ({args.jobs} workers)")
    print(f"speed-up             {basic / joblib:8.2f} x (target >= 1.7)")


if __name__ == "__main__":
    main()
