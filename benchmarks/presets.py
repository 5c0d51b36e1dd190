"""Train experiment presets over seeds and report their final deterministic evaluation return.

    python benchmarks/presets.py cartpole_ppo cliffwalking_ppo --seeds 0 1 2 --episodes 10

Each (preset, seed) is a real `acexp.run.run` into `--out/<preset>/seed=<s>`; the saved
`model.pt` is reloaded and evaluated greedily on fresh episodes with raw rewards. Prints one
markdown row per preset: mean, std, min and max over seeds of the per-seed mean return.
Extra `--override`s (e.g. total_steps=20000) apply to every run.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acexp.config.overrides import CONF  # noqa: E402
from acexp.envs.make import make_env  # noqa: E402
from acexp.models.build import build_model  # noqa: E402
from acexp.run import run  # noqa: E402
from acexp.runtime.checkpoint import load_torch  # noqa: E402
from acexp.runtime.evaluation import evaluate_policy  # noqa: E402


def train_and_evaluate(
    preset: str, seed: int, overrides: list[str], episodes: int, out: Path
) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            [f"+experiment={preset}", f"seed={seed}", "log.progress=false", *overrides],
        )
    run_dir = out / preset / f"seed={seed}"
    start = time.perf_counter()
    metrics = run(cfg, out_dir=run_dir)
    env = make_env(cfg.env, seed)
    model = build_model(cfg, env.observation_space, env.action_space)
    env.close()
    model.load_member_state_dict(0, load_torch(run_dir / "model.pt"))
    returns = evaluate_policy(model, cfg, episodes, deterministic=True, seed=10_000 + seed)
    result = {
        "preset": preset,
        "seed": seed,
        "env_steps": metrics["env_steps"],
        "train_seconds": round(time.perf_counter() - start, 1),
        "eval_mean": statistics.fmean(returns),
        "eval_returns": returns,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="+", help="names of conf/experiment/*.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per seed")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "presets")
    args = parser.parse_args()

    rows = []
    for preset in args.presets:
        results = [
            train_and_evaluate(preset, s, args.override, args.episodes, args.out)
            for s in args.seeds
        ]
        means = [r["eval_mean"] for r in results]
        spread = statistics.stdev(means) if len(means) > 1 else 0.0
        steps = max(r["env_steps"] for r in results)
        rows.append(
            f"| {preset} | {len(means)} | {steps} | {statistics.fmean(means):.1f} | {spread:.1f} "
            f"| {min(means):.1f} | {max(means):.1f} |"
        )
    print("\n| preset | seeds | env steps | mean | std | min | max |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
