"""Mutation testing of the pure, numerical modules with mutmut: how many of the small faults it
plants in them (an operator flipped, a constant changed, an argument dropped) the fast unit
tests of each module catch. Not part of CI: a run takes minutes per module.

    pip install -e '.[mutation]'
    nice -n 10 python -m benchmarks.mutation stats [--keep DIR]

One group of modules at a time (`groups` below: its modules and the tests that cover them).
The committed tree (git HEAD) is copied into a scratch directory, where mutmut writes its
mutants/ and its configuration; this checkout is left alone. Prints mutmut's count of each
outcome and the score, killed / (killed + survived + no tests); the survivors are listed,
`mutmut show NAME` in the kept directory shows each one's change.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# group: (modules mutated, pytest arguments that select their fast unit tests, the functions
# counted: all of the modules' functions, or those named, where a module holds more than the
# pure ones: acexp/algos/ppo.py holds PPO's trainer beside its three loss functions)
GROUPS: dict[str, tuple[list[str], list[str], list[str] | None]] = {
    "losses": (
        ["acexp/algos/losses.py", "acexp/algos/ppo.py"],
        ["tests/test_losses.py", "tests/test_loss_edges.py", "tests/test_ppo.py", "-k",
         "not cli_run and not target_kl and not stored and not a2c_logs"],
        ["actor_loss", "batch_mean", "_reduce", "critic_loss", "total_loss",
         "discounted_returns", "normalize", "gae", "explained_variance",
         "clipped_surrogate_loss", "policy_shift", "clipped_value_loss"],
    ),
    "optim": (
        ["acexp/optim/modes.py", "acexp/optim/flat_params.py"],
        ["tests/test_optim.py", "tests/test_optim_edges.py", "tests/test_batched.py", "-k",
         "not trains and not member_that and not sigterm and not evaluation_during "
         "and not episodic_members and not batch_key"],
        None,
    ),
    "stats": (
        ["acexp/analysis/stats.py"],
        ["tests/test_report.py", "tests/test_statistics.py", "-k",
         "iqm or bootstrap or grouping or summarize or curve_helpers or moving_average "
         "or band_ or override_key or mean_ci or interpolate_curve or common_overrides "
         "or floats or many_points"],
        None,
    ),
    "survival": (
        ["acexp/analysis/survival.py"],
        ["tests/test_survival.py", "tests/test_survival_edges.py", "tests/test_statistics.py"],
        None,
    ),
    "normalization": (
        ["acexp/models/normalization.py"],
        ["tests/test_envs.py", "tests/test_normalization.py", "-k",
         "normalize_observation or images_are_scaled or running_statistics_match "
         "or normaliz or image or bounded"],
        None,
    ),
}  # fmt: skip

CONFIG = """[mutmut]
source_paths = acexp
only_mutate =
{modules}
also_copy =
    conf
    hydra_plugins
    benchmarks
pytest_add_cli_args = -p no:cacheprovider -q -x
pytest_add_cli_args_test_selection =
{tests}
process_isolation = forkserver
"""


def indented(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def scratch_copy(dest: Path, group: str) -> None:
    """git HEAD's tree in `dest`, with the mutmut configuration of `group` as setup.cfg."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True,
                             check=True, timeout=120).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    modules, tests, _ = GROUPS[group]
    (dest / "setup.cfg").write_text(CONFIG.format(modules=indented(modules), tests=indented(tests)))


def outcomes(workdir: Path, functions: list[str] | None) -> dict[str, str]:
    """mutmut's outcome of each mutant counted (killed, survived, no tests, timeout, ...)."""
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                             cwd=workdir, capture_output=True, text=True, check=True,
                             timeout=300).stdout  # fmt: skip
    rows = [line.rsplit(": ", 1) for line in listing.splitlines() if ": " in line]
    found = {name.strip(): status.strip() for name, status in rows}
    if functions is None:
        return found
    # names read <module>.x_<function>__mutmut_<n>, or <module>.xǁ<Class>ǁ<method>__mutmut_<n>
    return {
        name: status for name, status in found.items()
        if name.rsplit("__mutmut_", 1)[0].rsplit(".x_", 1)[-1] in functions
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", choices=GROUPS)
    parser.add_argument("--keep", type=Path, help="scratch directory to use and keep")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix=f"acexp-mutation-{args.group}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scratch_copy(workdir, args.group)
    env_run = [sys.executable, "-m", "mutmut", "run", "--max-children", "1"]
    subprocess.run(env_run, cwd=workdir, check=True, timeout=4 * 3600,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    found = outcomes(workdir, GROUPS[args.group][2])
    counts = Counter(found.values())
    killed, survived, untested = counts["killed"], counts["survived"], counts["no tests"]
    print(f"{args.group}: {dict(counts)}")
    for name, status in sorted(found.items()):
        if status != "killed":
            print(f"  {status}: {name}")
    print(f"score: {killed} / {killed + survived + untested} = "
          f"{killed / max(killed + survived + untested, 1):.1%} killed; in {workdir}")  # fmt: skip


if __name__ == "__main__":
    main()
