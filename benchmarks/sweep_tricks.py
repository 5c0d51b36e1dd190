"""What each of the batched sweep's start-up shortcuts saves on a real sweep.

The batched launcher has three shortcuts, each kept only while it saves at least 5 % of the
wall time of `benchmarks.batched`'s CartPole figure (32 runs of 200k env steps):

- reusing compositions: the launcher takes the sweeper's composition of each job, and makes a
  job that differs from an earlier one in plain values only from that one's config
  (acexp/sweeps/hydra_internals.py);
- the early start: `python -m acexp -m` starts the launcher's fork server before it imports
  torch (acexp.sweeps.multirun.start_launcher);
- the quick exit: the fork server exits without tearing torch down (_quick_exit.py).

Each variant turns one shortcut off in the sweep's own process (a patch applied before
`python -m acexp` runs; the code itself has no switch), alternated with the code as it is,
and the figure is the median wall time of each.

    python -m benchmarks.sweep_tricks [--repeats N]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.batched import FIGURES

# Python run in the sweep's process before `python -m acexp`: each turns one shortcut off.
RUN_ACEXP = (
    "import runpy, sys; sys.argv[0] = 'acexp'; runpy.run_module('acexp', run_name='__main__')"
)
PATCHES = {
    "as is": "",
    "no composition reuse": (
        "import acexp.config.overrides as o, acexp.sweeps.hydra_internals as h\n"
        "o.with_plain_values = lambda overrides, sibling: None\n"
        "h.KeptCompositions.__init__ = lambda self, loader: setattr(self, 'compose_fully', "
        "loader.load_sweep_config)\n"
        "h.KeptCompositions.take = lambda self, master, overrides: self.compose_fully("
        "master, list(overrides))\n"
        "h.KeptCompositions.forget = lambda self: None\n"
    ),
    "no early start": (
        "import acexp.sweeps.multirun as m\nm.start_launcher = lambda hydra_cfg: None\n"
    ),
    # the fork server is a process of its own: drop the quick exit from its preloads as the
    # launcher's module is imported, without importing it (and torch) any earlier
    "no quick exit": (
        "import importlib.abc, importlib.machinery, sys\n"
        "class Hook(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name != 'hydra_plugins.acexp_batched_launcher._batches':\n"
        "            return None\n"
        "        spec = importlib.machinery.PathFinder.find_spec(name, path)\n"
        "        run = spec.loader.exec_module\n"
        "        def exec_module(module):\n"
        "            run(module)\n"
        "            module.WORKER_IMPORTS[:] = [m for m in module.WORKER_IMPORTS\n"
        "                                        if not m.endswith('_quick_exit')]\n"
        "        spec.loader.exec_module = exec_module\n"
        "        return spec\n"
        "sys.meta_path.insert(0, Hook())\n"
    ),
}


def sweep(out: Path, patch: str) -> float:
    """The wall time of the CartPole figure's batched sweep, read through a pipe as a user's
    `| tee` would (a pipe stays open until the last process holding it exits)."""
    overrides, _ = FIGURES["cartpole"]
    command = [sys.executable, "-c", patch + RUN_ACEXP, "-m", *overrides]
    command += ["hydra/launcher=batched", "log.progress=false", f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    wall = time.perf_counter() - start
    assert len(list(out.glob("*/metrics.json"))) == 32, "the sweep did not train its 32 runs"
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in PATCHES}
    with TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, patch in PATCHES.items():  # alternated: a slow spell hits every variant
                walls[name].append(sweep(Path(tmp, f"{i}-{len(walls[name])}-{hash(name)}"), patch))
                print(f"  {name}: {walls[name][-1]:.1f} s", flush=True)
    base = statistics.median(walls["as is"])
    print(f"as is: {base:.1f} s (median of {args.repeats})")
    for name in list(PATCHES)[1:]:
        off = statistics.median(walls[name])
        saved = (off - base) / off
        verdict = "keep" if saved >= 0.05 else "below 5 %"
        print(f"{name}: {off:.1f} s; the shortcut saves {saved:.1%} of the sweep ({verdict})")


if __name__ == "__main__":
    main()
