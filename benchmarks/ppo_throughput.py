"""Figure 4: PPO env-steps per second on HalfCheetah-v5 and PongNoFrameskip-v4 against SB3.

Equal settings, 8 synchronous envs each (SB3's DummyVecEnv; async measured no faster on 2
cores), the rollout and minibatch sizes of sb3_reference.PPO_THROUGHPUT_DEFAULTS:
- HalfCheetah: separate 64-64 tanh actor and critic, n_steps 256, minibatch 64, 10 epochs;
- Pong: Atari preprocessing + 4-frame stack, Nature CNN shared by actor and critic,
  n_steps 128, minibatch 256, 4 epochs.

    python -m benchmarks.ppo_throughput [--steps N] [--repeats 3] [--envs halfcheetah pong]
                                        [--vectorization sync|async]
"""

import argparse
import statistics

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


def acexp_sps(name: str, steps: int, vectorization: str = "sync") -> float:
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
        "--vectorization", choices=["sync", "async"], default="sync", help="acexp's vector envs"
    )
    args = parser.parse_args()
    from benchmarks.sb3_reference import sb3_ppo_throughput

    for name in args.envs:
        env_id = SETTINGS[name][0]
        steps = args.steps or DEFAULT_STEPS[name]
        ours, sb3 = [], []
        for _ in range(args.repeats):  # interleaved, so machine load hits both alike
            ours.append(acexp_sps(name, steps, args.vectorization))
            sb3.append(sb3_ppo_throughput(env_id, steps, num_envs=NUM_ENVS)["sps"])
        ours_sps, sb3_sps = statistics.median(ours), statistics.median(sb3)
        print(
            f"{env_id:22} acexp {ours_sps:8,.0f} SPS   SB3 {sb3_sps:8,.0f} SPS   "
            f"ratio {ours_sps / sb3_sps:5.2f} x (target >= 1.5; medians of {args.repeats})",
            flush=True,
        )


if __name__ == "__main__":
    main()
