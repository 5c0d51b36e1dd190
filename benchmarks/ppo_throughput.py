"""Figure 4: PPO env-steps per second on HalfCheetah-v5 and PongNoFrameskip-v4 against SB3.

Equal settings, 8 envs each, the rollout and minibatch sizes of
sb3_reference.PPO_THROUGHPUT_DEFAULTS. SB3 steps its envs one by one (DummyVecEnv); acexp
takes `env.vectorization`, by default `auto`: gymnasium's sync vector env for HalfCheetah
(async measured no faster on 2 cores), ale-py's C++ vector env for Pong. Several modes are
measured interleaved, in one invocation (e.g. `--vectorization sync ale`: before and after
ale-py's vector env):
- HalfCheetah: separate 64-64 tanh actor and critic, n_steps 256, minibatch 64, 10 epochs;
- Pong: Atari preprocessing + 4-frame stack, Nature CNN shared by actor and critic,
  n_steps 128, minibatch 256, 4 epochs.

    python -m benchmarks.ppo_throughput [--steps N] [--repeats 3] [--envs halfcheetah pong]
                                        [--vectorization auto|sync|async|ale ...]
"""

import argparse
import statistics

from acexp.envs.make import VECTORIZATIONS
from benchmarks.common import run_acexp

NUM_ENVS = 8
DEFAULT_STEPS = {"halfcheetah": 16_384, "pong": 8_192}
SETTINGS = {
    "halfcheetah": (
        "HalfCheetah-v5",
        [
            "env=halfcheetah",
            "arch=unshared",
            "arch.hidden_sizes=[64,64]",
            "arch.activation=tanh",
            "algo.n_steps=256",
            "algo.num_minibatches=32",
            "algo.n_epochs=10",
            "optim.name=adam",
            "optim.lr=3e-4",
            "env.obs_norm=none",  # SB3's reference has no VecNormalize
        ],
    ),
    "pong": (
        "PongNoFrameskip-v4",
        [
            "env=pong",
            "arch=shared",
            "algo.n_steps=128",
            "algo.num_minibatches=4",
            "algo.n_epochs=4",
            "optim.name=adam",
            "optim.lr=2.5e-4",
            "algo.clip_range=0.1",
            "algo.ent_coef=0.01",
        ],
    ),
}


def acexp_sps(name: str, steps: int, vectorization: str = "auto") -> float:
    _, overrides = SETTINGS[name]
    return run_acexp(
        "algo=ppo",
        *overrides,
        f"algo.num_envs={NUM_ENVS}",
        f"env.vectorization={vectorization}",
        "algo.anneal_lr=false",  # SB3's reference holds its learning rate constant
        "stop_on_solve=false",
        f"total_steps={steps}",
    )["sps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="per run (default: 16384, Pong 8192)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--envs", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument(
        "--vectorization",
        nargs="+",
        choices=VECTORIZATIONS,
        default=["auto"],
        help="acexp's vector envs (several: each measured, interleaved)",
    )
    args = parser.parse_args()
    from benchmarks.sb3_reference import sb3_ppo_throughput

    for name in args.envs:
        env_id = SETTINGS[name][0]
        steps = args.steps or DEFAULT_STEPS[name]
        ours: dict[str, list[float]] = {mode: [] for mode in args.vectorization}
        sb3 = []
        for _ in range(args.repeats):  # interleaved, so machine load hits all alike
            for mode in args.vectorization:
                ours[mode].append(acexp_sps(name, steps, mode))
            sb3.append(sb3_ppo_throughput(env_id, steps, num_envs=NUM_ENVS)["sps"])
        sb3_sps = statistics.median(sb3)
        for mode, sps in ours.items():
            ours_sps = statistics.median(sps)
            print(
                f"{env_id:22} acexp ({mode:5}) {ours_sps:8,.0f} SPS   SB3 {sb3_sps:8,.0f} SPS   "
                f"ratio {ours_sps / sb3_sps:5.2f} x (target >= 1.5; medians of {args.repeats})",
                flush=True,
            )


if __name__ == "__main__":
    main()
