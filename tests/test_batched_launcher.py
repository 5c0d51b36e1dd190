"""hydra/launcher=batched through the real CLI: run directories, batches, errors, Optuna,
SIGTERM and resume, and that a fresh install, editable or not, finds the plugin and the config."""

from __future__ import annotations

import copy
import csv
import json
import operator
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext
from omegaconf import OmegaConf

from acexp.config.overrides import CONF
from acexp.sweeps.batch import batch_key, group_batches, member_keys
from hydra_plugins.acexp_batched_launcher._held_signals import HeldSignals
from hydra_plugins.acexp_batched_launcher.batched_launcher import KeptCompositions
from tests.conftest import ROOT, acexp, make_cfg

TINY = ("total_steps=200", "log.progress=false")
SWEEP = ("seed=0,1", "optim.lr=1e-3,3e-3", *TINY)  # 4 runs that share one batch
# settings that change a shape, the control flow or the process: a batch shares them
SHARED_KEYS = (
    "env.id", "arch.name", "arch.hidden_sizes", "optim.mode", "optim.name",
    "algo.n_steps", "algo.num_envs", "torch_threads", "checkpoint.every_steps",
)  # fmt: skip
# run names leave out what every job shares (total_steps=200)
RUNS = {f"optim.lr={lr},seed={s}" for lr in ("0.001", "0.003") for s in (0, 1)}


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def files(job: Path) -> set[str]:
    """A run directory's files, with the parts that name a time, host or step left out."""
    names = {str(p.relative_to(job)) for p in job.rglob("*") if p.is_file()}
    return {re.sub(r"(events\.out\.tfevents|checkpoints/step_).*", r"\1*", n) for n in names}


def batches(stdout: str) -> list[set[str]]:
    """The jobs of each batch, from the launcher's `batch i/n (k jobs): names` log lines."""
    return [set(m.split()) for m in re.findall(r"\] batch \d+/\d+ \(\d+ jobs\): (.*)", stdout)]


def start(tmp: Path, *args: str, launcher: str = "batched") -> tuple[Path, subprocess.Popen]:
    """Start `python -m acexp -m args` into tmp/<launcher>, as conftest.acexp runs it."""
    out = tmp / launcher
    cmd = [sys.executable, "-m", "acexp", "-m", *args, f"hydra/launcher={launcher}",
           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={out}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pipe = subprocess.PIPE
    return out, subprocess.Popen(cmd, cwd=tmp, env=env, stdout=pipe, stderr=pipe, text=True)


def finish(out: Path, proc: subprocess.Popen) -> Path:
    """Wait for a sweep that must succeed; its stdout is kept in <sweep dir>/stdout.log."""
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    (out / "stdout.log").write_text(stdout)
    return out


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 4 runs side by side: batched (one batch, in the sweep's process) and joblib."""
    tmp = tmp_path_factory.mktemp("sweeps")
    batched, joblib = start(tmp, *SWEEP), start(tmp, *SWEEP, launcher="joblib")
    return finish(*batched), finish(*joblib)


def test_batched_sweep_writes_the_run_directories_joblib_writes(sweeps: tuple) -> None:
    batched, joblib = sweeps
    jobs = {p.name for p in batched.iterdir() if p.is_dir()}
    assert jobs == RUNS == {p.name for p in joblib.iterdir() if p.is_dir()}
    trained = batches((batched / "stdout.log").read_text())
    # one group of compatible runs, split in one batch per worker (hydra.launcher.n_jobs=2)
    assert sorted(map(len, trained)) == [2, 2] and set().union(*trained) == RUNS
    for job in RUNS:
        ours, theirs = batched / job, joblib / job
        assert files(ours) == files(theirs) == {
            ".acexp.lock", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml",
            "acexp.log",
            "events.out.tfevents*", "metrics.json", "model.pt", "checkpoints/step_*",
        }  # fmt: skip
        for name in ("config.yaml", "overrides.yaml"):
            assert (ours / ".hydra" / name).read_text() == (theirs / ".hydra" / name).read_text()
        hydra = yaml.safe_load((ours / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra["runtime"]["output_dir"] == str(ours)
        assert metrics(ours)["status"] == metrics(theirs)["status"] == "completed"
        assert metrics(ours).keys() == metrics(theirs).keys()
    for batch in trained:  # each job's log is the log of its batch
        logs = {(batched / job / "acexp.log").read_text() for job in batch}
        assert len(logs) == 1
        assert all(f"member {job}: completed" in next(iter(logs)) for job in batch)


def test_report_reads_a_batched_sweep(sweeps: tuple, tmp_path: Path) -> None:
    batched, _ = sweeps
    report = acexp(str(batched), cwd=tmp_path, module="acexp.report")
    assert report.returncode == 0, report.stderr
    with (batched / "report.csv").open() as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"optim.lr=0.001", "optim.lr=0.003"}
    assert all(int(row["n_completed"]) == 2 for row in rows.values())


def test_jobs_of_different_archs_train_in_different_batches(tmp_path: Path) -> None:
    out = finish(*start(tmp_path, "arch=shared,unshared", "seed=0,1", *TINY))
    shared, unshared = ({f"arch={a},seed={s}" for s in (0, 1)} for a in
                        ("shared", "unshared"))  # fmt: skip
    assert sorted(batches((out / "stdout.log").read_text()), key=sorted) == [shared, unshared]
    pids = {}  # the two batches ran side by side, each in its own worker process
    for job in shared | unshared:
        assert metrics(out / job)["status"] == "completed"
        (events,) = (out / job).glob("events.out.tfevents.*[0-9]")  # not the sweep's HParams
        pids[job] = events.name.split(".")[-2]
    assert len({pids[j] for j in shared}) == len({pids[j] for j in unshared}) == 1
    assert {pids[j] for j in shared} != {pids[j] for j in unshared}


def test_what_may_differ_within_a_batch() -> None:
    cfg = make_cfg("algo=ppo")
    for key in member_keys(cfg):  # per-member settings
        other = copy.deepcopy(cfg)
        OmegaConf.update(other, key, 12345, force_add=True)
        assert batch_key(other) == batch_key(cfg), key
    for key in SHARED_KEYS:
        other = copy.deepcopy(cfg)
        OmegaConf.update(other, key, [12345] if key == "arch.hidden_sizes" else 12345)
        assert batch_key(other) != batch_key(cfg), key


def test_group_batches_keeps_job_order_and_splits_at_max_size() -> None:
    cfgs = [
        make_cfg("seed=0"),
        make_cfg("seed=1"),
        make_cfg("arch=unshared"),
        make_cfg("optim.lr=0.01", "algo.ent_coef=0.1"),
        make_cfg("arch=unshared", "seed=3"),
        make_cfg("algo.n_steps=7"),
    ]
    assert group_batches(cfgs, 64) == [[0, 1, 3], [2, 4], [5]]
    assert group_batches(cfgs, 2) == [[0, 1], [2, 4], [3], [5]]


def test_the_launcher_takes_the_sweepers_compositions_instead_of_composing_again() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = compose("config", return_hydra_config=True)
        compositions = []
        compose_with_hydra = loader.load_sweep_config
        loader.load_sweep_config = lambda *args, **kwargs: (
            compositions.append(compose_with_hydra(*args, **kwargs)) or compositions[-1]
        )
        kept = KeptCompositions(loader)  # as the launcher's setup does, before the sweep
        sweeper = SimpleNamespace(
            hydra_context=HydraContext(config_loader=loader, callbacks=None), config=master
        )
        jobs = [["seed=1", "total_steps=100"], ["seed=2", "optim.lr=0.5"]]
        Sweeper.validate_batch_is_legal(sweeper, jobs)  # every sweeper's check: composes each job
        assert len(compositions) == 2
        configs = [kept.take(master, job) for job in jobs]
        assert len(compositions) == 2 and all(map(operator.is_, configs, compositions))
        want = [(1, 4e-3, 100), (2, 0.5, 200000)]
        assert [(c.seed, c.optim.lr, c.total_steps) for c in configs] == want
        kept.forget()
        assert kept.take(master, ["seed=1"]).seed == 1 and len(compositions) == 3


def test_jobs_that_differ_in_plain_values_are_made_from_a_sibling_as_composing_makes_them() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = compose("config", return_hydra_config=True)
        compose_with_hydra = loader.load_sweep_config
        composed = []
        loader.load_sweep_config = lambda *args: composed.append(args) or compose_with_hydra(*args)
        kept = KeptCompositions(loader)
        jobs = [
            ["arch=shared", "optim.lr=4e-3", "seed=0"],
            ["arch=shared", "optim.lr=4e-3", "seed=1"],
            ["arch=shared", "optim.lr=1e-3", "seed=7"],  # two plain values
            ["arch=unshared", "optim.lr=4e-3", "seed=0"],  # a group: composed
            ["arch=unshared", "optim.lr=1e-3", "seed=5"],  # from the unshared sibling
            ["arch=shared", "optim.lr=4e-3", "total_steps=9"],  # another key: composed
        ]
        made = [kept.take(master, job) for job in jobs]
        assert [args[1] for args in composed] == [jobs[0], jobs[3], jobs[5]]
        for job, config in zip(jobs, made, strict=True):
            want = OmegaConf.to_container(compose_with_hydra(master, job))
            assert OmegaConf.to_container(config) == want, job
        assert made[4].hydra.job.override_dirname == "arch=unshared,optim.lr=1e-3,seed=5"
        assert made[2].hydra.overrides.task == jobs[2]


def test_a_bad_value_in_one_job_stops_the_sweep_before_anything_trains(tmp_path: Path) -> None:
    # each value passes the CLI's own check; only seed=0 with optim.lr=${seed} gives lr=0
    out = tmp_path / "sweep"
    result = acexp("-m", "seed=1,0", "optim.lr=1,${seed}", *TINY, "hydra/launcher=batched",
                   f"hydra.sweep.dir={out}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        r"acexp: error: job optim.lr=$\{seed\},seed=0: optim.lr=0 is invalid; "
        "expected a number > 0"
    ]
    assert sorted(p.name for p in out.iterdir()) == [".acexp.lock", "multirun.yaml"]  # no job


EARLY_START = """
import sys
import hydra_plugins.acexp_batched_launcher._batches as batches
from acexp.__main__ import cli

def start_fork_server():
    print("fork server started; torch imported:", "torch" in sys.modules, flush=True)
    raise SystemExit(0)  # the command line has not been checked yet: nothing else to see

batches.start_fork_server = start_fork_server  # Hydra's plugin scan re-executes the launcher
cli()  # sys.argv[1:]: the arguments after -c's code
"""


# total_steps=0 composes (its type is right) and fails validation, which imports torch
@pytest.mark.parametrize(
    ("args", "started"),
    [
        (["-m", "seed=0,1", "hydra/launcher=batched"], True),
        (["-m", "+experiment=tutorial_sweep", "total_steps=0"], True),  # launcher from a preset
        (["seed=0", "hydra/launcher=batched", "total_steps=0"], False),  # a single run
        (["-m", "hydra/launcher=batched", "hydra.launcher.n_jobs=1", "total_steps=0"], False),
        (["-m", "seed=0,1", "total_steps=0"], False),  # the basic launcher
    ],
)
def test_the_cli_starts_the_fork_server_before_it_imports_torch(
    args: list[str], started: bool, tmp_path: Path
) -> None:
    """A batched sweep's fork server starts before `python -m acexp` imports torch, so that
    their imports overlap; where none is needed, the command line is checked as before."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", EARLY_START, *args]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    if started:
        assert result.returncode == 0, result.stderr
        assert result.stdout == "fork server started; torch imported: False\n"
    else:
        assert result.returncode == 2 and "fork server" not in result.stdout
        assert result.stderr.startswith("acexp: error: total_steps=0 is invalid")


def test_optuna_trials_launched_together_train_as_one_batch(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = acexp(
        "-m", "+hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
        *TINY, "hydra/launcher=batched", f"hydra.sweep.dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = [p for p in out.iterdir() if p.is_dir()]
    trained = batches(result.stdout)  # one batch per worker (n_jobs=2), one trial each
    assert len(trials) == 2 and set().union(*trained) == {p.name for p in trials}
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    finals = [metrics(p)["final_return"] for p in trials]
    assert best["best_value"] == pytest.approx(max(f for f in finals if f is not None))


@pytest.mark.parametrize("n_jobs", [2, 1])  # batches in worker processes; in the sweep's process
def test_sigterm_checkpoints_every_running_batch_and_resume_completes_it(
    tmp_path: Path, n_jobs: int
) -> None:
    out = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "acexp", "-m", "seed=0,1", "total_steps=20000",
        "stop_on_solve=false", "checkpoint.every_steps=500", "log.progress=false",
        "hydra/launcher=batched", "hydra.launcher.max_batch_size=1",
        f"hydra.launcher.n_jobs={n_jobs}", f"hydra.sweep.dir={out}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.glob("*/events.out.tfevents.*")):  # one run has built its trainer
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # reading a live sweep's stderr would wait for its end
            raise AssertionError(f"no run started: {proc.communicate(timeout=60)[1]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    jobs = sorted(p for p in out.iterdir() if p.is_dir())
    # side by side, both runs were stopped; one after another, the second never started
    assert len(jobs) == n_jobs
    for job in jobs:
        assert metrics(job)["status"] == "interrupted", stdout
        assert list((job / "checkpoints").glob("*.pt"))
    unstarted = "; 1 jobs had not started" if n_jobs == 1 else ""
    assert stderr.strip().splitlines()[-1] == (
        f"acexp: sweep stopped by SIGTERM; continue each of its {n_jobs} interrupted jobs "
        f"with: python -m acexp resume=<job dir>, e.g. python -m acexp resume={jobs[0]}{unstarted}"
    )
    resumed = acexp(f"resume={jobs[0]}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(jobs[0])["status"] == "completed"
    assert metrics(jobs[0])["env_steps"] >= 20000


def test_held_signal_reaches_the_handler_installed_after_it() -> None:
    received: list[int] = []
    with HeldSignals() as held:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second copy (terminal and sweep) counts once
        deadline = time.monotonic() + 5
        while not held.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held.received == [signal.SIGTERM]
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        try:
            deadline = time.monotonic() + 5
            while not received and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]


def fresh_venv(tmp_path: Path, *install: str) -> Path:
    """A new venv with acexp installed by `pip install --no-deps <install>`; its other
    packages are this venv's, reached through a .pth, so nothing is downloaded."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([python, "-c", ask], capture_output=True, text=True, check=True,
                             timeout=60)  # fmt: skip
    here = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    (Path(purelib.stdout.strip()) / "_parent_venv.pth").write_text(here.stdout)
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
           "--no-build-isolation", "--no-index", "-q", *install]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return python


CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no checkout on the path


def test_fresh_editable_install_runs_a_batched_sweep_from_another_directory(
    tmp_path: Path,
) -> None:
    python = fresh_venv(tmp_path, "-e", str(ROOT))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = elsewhere / "sweep"
    cmd = [python, "-m", "acexp", "-m", "seed=0", *TINY, "hydra/launcher=batched",
           f"hydra.sweep.dir={out}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=elsewhere, env=CLEAN_ENV, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert metrics(out / "seed=0,total_steps=200")["status"] == "completed"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with acexp installed (not editable) from a copy of the
    source, as from a wheel: its config tree must come from the package, not a checkout."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"  # a copy: building a wheel in place would leave build/ behind
    for name in ("acexp", "hydra_plugins", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return fresh_venv(tmp, str(src))


def test_fresh_install_ships_the_launcher(installed: Path, tmp_path: Path) -> None:
    scan = (
        "from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher\n"
        "import hydra_plugins.acexp_batched_launcher as plugin; print(plugin.__file__)\n"
        "print(*sorted(p.__name__ for p in Plugins.instance().discover(Launcher)))"
    )
    result = subprocess.run([installed, "-c", scan], cwd=tmp_path, env=CLEAN_ENV,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    where, launchers = result.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parents[1]) and "BatchedLauncher" in launchers


def test_fresh_install_runs_a_batched_sweep_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    cmd = [installed, "-m", "acexp", "-m", "seed=0", *TINY, "hydra/launcher=batched",
           f"hydra.sweep.dir={out}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = out / "seed=0,total_steps=200"
    assert metrics(job)["status"] == "completed"
    hydra = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
    (main,) = [s for s in hydra["runtime"]["config_sources"] if s["provider"] == "main"]
    assert Path(main["path"]).is_relative_to(installed.parents[1])  # the installed acexp/conf
    preset = [installed, "-m", "acexp", "+experiment=cartpole_ppo", "--cfg", "job"]
    result = subprocess.run(preset, cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    assert (cfg["algo"]["name"], cfg["algo"]["gamma"], cfg["total_steps"]) == ("ppo", 0.98, 100000)
