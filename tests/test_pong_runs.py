"""benchmarks.pong_runs: the figures of docs/envs.md's Pong table, read back from a run."""

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from benchmarks.pong_runs import first_above_zero, games, training_return


def test_first_above_zero_waits_for_100_games_and_weighs_each_game(tmp_path: Path) -> None:
    def log(writer: SummaryWriter, step: int, mean: float, episodes: int) -> None:
        writer.add_scalar("charts/episodic_return", mean, step)
        writer.add_scalar("charts/episodes", episodes, step)

    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        for i in range(50):  # 50 wins: above 0, but a mean over fewer than 100 games
            log(writer, 10_000 * (i + 1), 21.0, i + 1)
        for j in range(50):  # 100 losses, two games ending on each logged step
            log(writer, 510_000 + 10_000 * j, -21.0, 50 + 2 * (j + 1))
        for k in range(60):  # then a win per step: the last 100 games pass 0 at the 51st
            log(writer, 2_000_000 + 10_000 * (k + 1), 21.0, 150 + k + 1)
    # a mean over each logged point as one game, or over fewer than 100 games, passes 0 sooner
    assert first_above_zero(tmp_path) == "2.51M"


def test_games_takes_the_newest_record_of_each_kind(tmp_path: Path) -> None:
    def record(name: str, deterministic: bool, returns: list[float]) -> None:
        body = {"deterministic": deterministic, "returns": returns}
        (tmp_path / name).write_text(json.dumps(body))

    record("eval.json", False, [1.0, 3.0])  # sampled first, as a run may have it
    record("eval-1.json", True, [20.0, 21.0, 19.0])
    assert games(tmp_path, deterministic=True) == "20.00 ± 0.82 (19, 21)"
    assert games(tmp_path, deterministic=False) == "2.00 ± 1.00 (1, 3)"
    record("eval-2.json", True, [5.0, 5.0])
    assert games(tmp_path, deterministic=True) == "5.00 ± 0.00 (5, 5)"


def test_a_run_without_metrics_json_averages_the_last_100_games_of_its_events(
    tmp_path: Path,
) -> None:
    # CleanRL's ppo_atari.py logs one point a game and no game count; two of its 8 envs can end
    # a game on the same step
    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        for game in range(120):
            score = -21.0 if game < 20 else 20.0 if game % 2 else 14.0
            writer.add_scalar("charts/episodic_return", score, 1024 * (game // 2 + 1))
    # the last 100 games: 50 at 20 and 50 at 14; any of the first 20 losses would pull it down
    assert training_return(tmp_path) == "17.00"
    (tmp_path / "metrics.json").write_text(json.dumps({"final_return": 16.5}))
    assert training_return(tmp_path) == "16.5"  # an acexp run's own figure comes first


def test_a_run_with_fewer_than_100_games_has_no_training_return(tmp_path: Path) -> None:
    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        for game in range(99):
            writer.add_scalar("charts/episodic_return", 21.0, 1024 * (game + 1))
    assert training_return(tmp_path) == "—"
