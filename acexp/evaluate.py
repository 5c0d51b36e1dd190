"""`python -m acexp.evaluate <run dir>`: play a trained policy and report its returns.

The model is rebuilt from the run's saved config and the env's spaces, its weights loaded from
`model.pt` (or `--checkpoint`; the latest checkpoint when the run has no `model.pt`). Results
go to `<run dir>/eval.json`; `--video` records every episode into `<run dir>/videos/`. A later
evaluation of the same run keeps the earlier ones: it writes `eval-1.json` (and `videos-1/`),
then `eval-2.json`, ...
"""

import argparse
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import acexp.algos.components  # noqa: F401  (fills the registries)
from acexp.config.resume import saved_config
from acexp.config.validate import validate
from acexp.envs.make import make_env
from acexp.errors import ConfigError, MissingExtraError, one_line_errors
from acexp.models import ActorCritic
from acexp.models.build import build_model
from acexp.runtime.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    save_json_beside,
)
from acexp.runtime.evaluation import play_episodes

# What an evaluation writes in the run directory, "{}" its suffix: "", "-1", "-2", ...
WRITES = ("eval{}.json", "videos{}")


def load_policy(
    run_dir: Path, cfg: DictConfig, checkpoint: Path | None, env: gym.Env, device: str = "cpu"
) -> tuple[ActorCritic, Path]:
    """The run's model (`cfg`: its saved config) for `env`'s spaces with trained weights, and
    the file they came from."""
    cfg = cfg.copy()
    cfg.device = device
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise CheckpointError(
                f"{checkpoint} is not a checkpoint of an acexp run (it holds no model weights); "
                "expected a file from <run dir>/checkpoints/"
            )
        source, weights = checkpoint, state["model"]
    elif (run_dir / "model.pt").is_file():
        source, weights = run_dir / "model.pt", load_checkpoint(run_dir / "model.pt")
    else:
        found = latest_checkpoint(run_dir / "checkpoints")
        if found is None:
            raise ConfigError(f"{run_dir} has neither model.pt nor a readable checkpoint")
        source, weights = found[0], found[1]["model"]
    model = build_model(cfg, env.observation_space, env.action_space)
    load_weights(model, weights, source)
    return model.eval(), source


def run_config(run_dir: Path) -> DictConfig:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no .hydra/config.yaml)")
    cfg = saved_config(run_dir)
    validate(cfg)  # e.g. a run saved by an older acexp, whose config lacks newer keys
    return cfg


def make_eval_env(cfg: DictConfig, seed: int, video_dir: Path | None) -> gym.Env:
    """One env built as the run's trainer builds it; with `video_dir`, every episode is
    recorded as an mp4 (render_mode rgb_array)."""
    if video_dir is None:
        return make_env(cfg.env, seed)
    try:
        import moviepy  # noqa: F401  (RecordVideo writes mp4 files with it)
    except ImportError:
        raise MissingExtraError("--video", "video") from None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # render off-screen, no display needed
    env_cfg = OmegaConf.merge(cfg.env, {"kwargs": {"render_mode": "rgb_array"}})
    return gym.wrappers.RecordVideo(
        make_env(env_cfg, seed),
        str(video_dir),
        episode_trigger=lambda _: True,
        name_prefix="eval",
        disable_logger=True,
    )


def evaluate(
    run_dir: Path,
    episodes: int = 10,
    deterministic: bool = False,
    video: bool = False,
    checkpoint: Path | None = None,
    seed: int = 0,
) -> dict:
    """Play the run's policy; write `eval.json`'s content (to `eval-N.json` when that name is
    taken) and return it, with `file`: the path written."""
    if episodes < 1:
        raise ConfigError(f"--episodes={episodes} is invalid; expected an integer >= 1")
    cfg = run_config(run_dir)
    torch.set_num_threads(cfg.torch_threads)  # as the run trained: one is fastest for small nets
    torch.manual_seed(seed)
    suffix = _unused_suffix(run_dir)
    env = make_eval_env(cfg, seed, run_dir / f"videos{suffix}" if video else None)
    try:
        model, source = load_policy(run_dir, cfg, checkpoint, env)
        returns = play_episodes(model, env, episodes, deterministic, seed)
    finally:
        env.close()
    result = {
        "episodes": episodes,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "returns": returns,
        "deterministic": deterministic,
        "seed": seed,
        "weights": str(source),
        "videos": sorted(str(p) for p in (run_dir / f"videos{suffix}").glob("*.mp4"))
        if video
        else [],
    }
    written = save_json_beside(result, run_dir / f"eval{suffix}.json")
    return {**result, "file": str(written)}


def _unused_suffix(run_dir: Path) -> str:
    """ "" for the run's first evaluation, then "-1", "-2", ...: the first that names neither
    an evaluation's results nor its videos, so that no evaluation replaces another's."""
    suffixes = ("" if n == 0 else f"-{n}" for n in range(10_000))
    return next(s for s in suffixes if not any((run_dir / w.format(s)).exists() for w in WRITES))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m acexp.evaluate", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run's output directory")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play")
    parser.add_argument("--deterministic", action="store_true", help="act by the mode (argmax)")
    parser.add_argument("--video", action="store_true", help="record mp4s into <run>/videos/")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint instead of model.pt")
    parser.add_argument("--seed", type=int, default=0, help="seeds the env and the sampling")
    args = parser.parse_args(argv)
    try:
        result = evaluate(
            args.run_dir, args.episodes, args.deterministic, args.video, args.checkpoint, args.seed
        )
    except ConfigError as exc:
        print(f"acexp.evaluate: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(
        f"{result['episodes']} episodes: return {result['mean_return']:.2f} "
        f"+- {result['std_return']:.2f} (std), weights {result['weights']}; "
        f"wrote {result['file']}"
    )


if __name__ == "__main__":
    with one_line_errors(prog="acexp.evaluate"):
        main()
