"""benchmarks.factors: one factor's two values compared at each setting of the others."""

import json
from pathlib import Path

import pytest
from scipy.stats import mannwhitneyu

from acexp.analysis import survival
from acexp.analysis.report import find_runs
from benchmarks.factors import EVAL_TAG, compare, print_groups, solved_by_evaluation


def job(sweep: Path, overrides: list[str], metrics: dict) -> None:
    path = sweep / ",".join(overrides)
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))  # JSON is YAML
    (path / "metrics.json").write_text(json.dumps({"status": "completed", **metrics}))


def test_each_setting_of_the_other_factors_gets_its_own_row(tmp_path: Path) -> None:
    solve = {"shared": [100, 200, None], "unshared": [300, 400, 500]}  # None: never solved
    evals = {"shared": [500.0, 480.0, 100.0], "unshared": [200.0, 250.0, 300.0]}
    for arch in solve:
        for clip in ("0.5", "null"):
            for seed in range(3):
                steps = solve[arch][seed]
                job(
                    tmp_path,
                    [
                        f"arch={arch}",
                        f"optim.max_grad_norm={clip}",
                        f"seed={seed}",
                        "+experiment=x",
                    ],  # fmt: skip
                    {"steps_to_solve": steps, "env_steps": 600, "eval_return": evals[arch][seed]},
                )
    rows = compare(find_runs(tmp_path), "arch")
    assert len(rows) == 2  # one per clipping value; the shared +experiment is not a factor
    metrics = {arch: [{"steps_to_solve": s, "env_steps": 600} for s in solve[arch]]
               for arch in solve}  # fmt: skip
    times = [survival.solve_times(metrics[a], unit="env_steps") for a in ("shared", "unshared")]
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    assert cells[0] == "arch: shared vs unshared" and cells[1] == "optim.max_grad_norm=0.5"
    # KM medians: shared 100, 200, censored at 600 -> S = 2/3, 1/3: median 200; unshared 400
    assert cells[2] == "200 vs 400"
    assert float(cells[3]) == pytest.approx(survival.logrank(*times), abs=5e-4)
    assert cells[4] == "360.0 vs 250.0"
    p = mannwhitneyu(evals["shared"], evals["unshared"]).pvalue
    assert float(cells[5]) == pytest.approx(p, abs=5e-4)


def test_no_solve_on_either_side_reads_as_such_not_as_nan(tmp_path: Path) -> None:
    for arch in ("shared", "unshared"):
        for seed in range(2):
            job(tmp_path, [f"arch={arch}", f"seed={seed}"],
                {"steps_to_solve": None, "env_steps": 600, "eval_return": 1.0 + seed})  # fmt: skip
    (row,) = compare(find_runs(tmp_path), "arch")
    assert [c.strip() for c in row.split("|")[1:-1]][2:4] == ["— vs —", "— (none solved)"]


def test_solved_by_evaluation_is_the_first_evaluation_that_reached_the_threshold(
    tmp_path: Path,
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    job(tmp_path, ["seed=0"], {"steps_to_solve": None, "env_steps": 200})
    (run,) = find_runs(tmp_path)
    with SummaryWriter(str(run.path)) as writer:
        for step, value in [(50, 150.0), (100, 210.0), (150, 190.0), (200, 230.0)]:
            writer.add_scalar(EVAL_TAG, value, step)
    assert solved_by_evaluation(run, 200.0)["steps_to_solve"] == 100
    assert solved_by_evaluation(run, 230.0)["steps_to_solve"] == 200
    assert solved_by_evaluation(run, 231.0) == {**run.metrics, "steps_to_solve": None}


def test_groups_table_counts_each_groups_runs_whose_evaluation_reached_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    first_reach = {
        ("shared", 0): 100,
        ("shared", 1): None,
        ("unshared", 0): 50,
        ("unshared", 1): 150,
    }
    for arch, seed in first_reach:
        job(tmp_path, [f"arch={arch}", f"seed={seed}", "total_steps=200"],
            {"steps_to_solve": None, "env_steps": 200})  # fmt: skip
    runs = find_runs(tmp_path)
    for run in runs:
        arch, seed = run.overrides[0].split("=")[1], int(run.overrides[1].split("=")[1])
        with SummaryWriter(str(run.path)) as writer:
            for at in (50, 100, 150, 200):
                reached = first_reach[arch, seed] is not None and at >= first_reach[arch, seed]
                writer.add_scalar(EVAL_TAG, 210.0 if reached else 100.0, at)
        run.metrics = solved_by_evaluation(run, 200.0)
    print_groups(runs, 200.0)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| arch")]
    cells = [[c.strip() for c in row.split("|")[1:-1]] for row in rows]
    assert [c[:3] for c in cells] == [["arch=shared", "2", "1/2"], ["arch=unshared", "2", "2/2"]]
    # unshared: both reached it, at 50 and 150: the Kaplan-Meier median is the first time at
    # which half had, 50
    assert cells[1][3].startswith("50 [")
