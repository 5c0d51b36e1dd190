"""CleanRL's own `ppo_atari.py` on Pong, as the reference for `+experiment=pong_ppo`.

The preset copies that script's settings; this runs the script itself, unchanged, so that the two
can be compared at the same budget on the same machine. CleanRL is not a dependency of acexp:
point `--cleanrl` at a checkout of github.com/vwxyzjn/cleanrl. Its Atari code pins gymnasium
0.29 (its vector env's `final_info` and its wrappers' names), so the `train` step runs in a
venv of its own, which needs nothing of acexp:

    python -m venv cleanrl-venv
    cleanrl-venv/bin/pip install torch gymnasium==0.29.1 ale-py==0.9.1 tyro tensorboard \\
        "numpy<2" opencv-python-headless
    cleanrl-venv/bin/python benchmarks/cleanrl_pong.py train --cleanrl <checkout> \\
        --seed 1 --total-timesteps 2500000        # 10M frames, the preset's budget

It writes CleanRL's run directory (`runs/PongNoFrameskip-v4__ppo_atari__<seed>__<time>`, in the
current directory) and saves the final agent there as `agent.pt`. Then, in acexp's venv,

    python benchmarks/cleanrl_pong.py view <that run dir> <a pong_ppo run dir> <out dir>
    python -m acexp.evaluate <out dir> --episodes 30 --deterministic
    python -m benchmarks.pong_runs <out dir>

`view` puts the agent's weights into an acexp run directory (the pong_ppo run's config, CleanRL's
event file), so that the final model is played by the same evaluation as acexp's runs and read by
the same table. CleanRL's layers come in the order and shapes of the preset's network
(tests/test_atari_fidelity.py shows that the two give the same outputs with the same weights).
"""

import argparse
import runpy
import shutil
import sys
from pathlib import Path

import torch


def train(cleanrl: Path, seed: int, total_timesteps: int) -> None:
    """Run CleanRL's ppo_atari.py on PongNoFrameskip-v4 on the CPU and save its final agent."""
    import ale_py  # noqa: F401, PLC0415 (registers the Atari envs, which gymnasium 0.29 does not load)

    sys.path.insert(0, str(cleanrl))  # its cleanrl_utils.atari_wrappers
    sys.argv = [
        "ppo_atari.py",
        "--env-id=PongNoFrameskip-v4",
        f"--seed={seed}",
        f"--total-timesteps={total_timesteps}",
        "--no-cuda",
    ]
    script = runpy.run_path(str(cleanrl / "cleanrl" / "ppo_atari.py"), run_name="__main__")
    torch.save(script["agent"].state_dict(), Path("runs") / script["run_name"] / "agent.pt")


def view(run: Path, template: Path, out: Path) -> None:
    """An acexp run directory holding CleanRL's final agent and its training events."""
    theirs = torch.load(run / "agent.pt", weights_only=True)
    ours = torch.load(template / "model.pt", weights_only=True)
    if len(theirs) != len(ours):
        raise SystemExit(
            f"cleanrl_pong: {len(theirs)} tensors in CleanRL's agent, {len(ours)} here"
        )
    weights = {}
    for (key, value), (their_key, their_value) in zip(ours.items(), theirs.items(), strict=True):
        if value.shape != their_value.shape or key.split(".")[-1] != their_key.split(".")[-1]:
            raise SystemExit(f"cleanrl_pong: {their_key} does not fit {key}")
        weights[key] = their_value
    if out.exists():
        raise SystemExit(f"cleanrl_pong: {out} exists; name a new directory")
    out.mkdir(parents=True)
    shutil.copytree(template / ".hydra", out / ".hydra")
    torch.save(weights, out / "model.pt")
    for events in run.glob("events.out.tfevents.*"):
        shutil.copy2(events, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="run CleanRL's script (in a gymnasium 0.29 venv)")
    run.add_argument("--cleanrl", type=Path, required=True, help="a checkout of CleanRL")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--total-timesteps", type=int, default=2_500_000)
    look = commands.add_parser("view", help="an acexp run directory holding CleanRL's agent")
    look.add_argument("run", type=Path, help="CleanRL's run directory, with agent.pt")
    look.add_argument("template", type=Path, help="a pong_ppo run directory")
    look.add_argument("out", type=Path, help="the directory to write (must not exist)")
    args = parser.parse_args()
    if args.command == "train":
        train(args.cleanrl, args.seed, args.total_timesteps)
    else:
        view(args.run, args.template, args.out)


if __name__ == "__main__":
    main()
