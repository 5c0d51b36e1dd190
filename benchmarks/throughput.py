"""Figures 2 and 3: A2C env-steps per second against Stable-Baselines3, and against the ceiling.

Equal settings: CartPole-v1, 16 envs, n_steps 5, separate 64-64 tanh actor and critic
(SB3's default MlpPolicy), RMSprop lr 7e-4 eps 1e-5, vf_coef 0.5, max_grad_norm 0.5, no
stopping. The ceiling is the cost of the same network work alone (acting forward passes,
the bootstrap value and one update per rollout) on random data of the same shapes. The
updates-only figure drops the acting passes too: what the gradient steps alone allow.
`--compile` also times those updates under torch.compile, and how long compiling takes.

    python -m benchmarks.throughput [--steps 200000] [--repeats 3] [--compile]
"""

import argparse
import statistics
import time

import gymnasium as gym
import torch
from omegaconf import OmegaConf

from acexp.models import UnsharedActorCritic
from acexp.optim.modes import apply_update, build_optimizers
from benchmarks.common import run_acexp

NUM_ENVS, N_STEPS = 16, 5
EQUAL = [
    "arch=unshared",
    "arch.hidden_sizes=[64,64]",
    "arch.activation=tanh",
    "optim.name=rmsprop",
    "optim.lr=7e-4",
    "optim.max_grad_norm=0.5",
    f"algo.num_envs={NUM_ENVS}",
    f"algo.n_steps={N_STEPS}",
    "algo.gae_lambda=1.0",
    "algo.vf_coef=0.5",
    "algo.ent_coef=0.0",
    "algo.normalize_advantage=false",
    "stop_on_solve=false",
]


def acexp_sps(steps: int) -> float:
    return run_acexp(*EQUAL, f"total_steps={steps}")["sps"]


def equal_model() -> tuple[UnsharedActorCritic, list, dict[str, torch.Tensor]]:
    """The EQUAL network and optimizer, and random data of one rollout's shapes."""
    torch.set_num_threads(1)
    obs_space, act_space = gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)
    model = UnsharedActorCritic(obs_space, act_space, [64, 64], "tanh")
    cfg = OmegaConf.create({"mode": "joint", "name": "rmsprop", "lr": 7e-4, "eps": 1e-5})
    batch = N_STEPS * NUM_ENVS
    data = {
        "obs": torch.randn(N_STEPS + 1, NUM_ENVS, 4),
        "actions": torch.randint(0, 2, (batch,)),
        "returns": torch.randn(batch),
        "advantages": torch.randn(batch),
    }
    return model, build_optimizers(model, cfg), data


def a2c_loss(model: UnsharedActorCritic, data: dict[str, torch.Tensor]) -> torch.Tensor:
    """The A2C loss at EQUAL's coefficients, computed as the trainer computes it."""
    batch = data["obs"][:-1].flatten(0, 1)
    log_prob, _, values = model.evaluate_actions(batch, data["actions"])
    return -(log_prob * data["advantages"]).mean() + 0.5 * (values - data["returns"]).pow(2).mean()


def ceiling_sps(updates: int = 2000, acting: bool = True) -> float:
    """Env steps per second if the environment and all bookkeeping were free.

    With `acting=False`, only the gradient steps: a bound no loop around them can pass.
    """
    model, optimizers, data = equal_model()
    obs = data["obs"]
    start = time.perf_counter()
    for _ in range(updates):
        if acting:
            with torch.inference_mode():
                for t in range(N_STEPS):
                    model.act(obs[t])  # what the trainer calls when acting
                model.value(obs[-1])
        apply_update(a2c_loss(model, data), optimizers, 0.5)
    return updates * N_STEPS * NUM_ENVS / (time.perf_counter() - start)


def compiled_updates_sps(updates: int = 2000) -> tuple[float, float]:
    """`ceiling_sps(acting=False)` with the loss and the optimizer step under torch.compile;
    returns (SPS after compiling, seconds spent compiling)."""
    model, optimizers, data = equal_model()
    (named,) = optimizers
    loss = torch.compile(a2c_loss)

    @torch.compile
    def step() -> None:
        torch.nn.utils.clip_grad_norm_(named.params, 0.5)
        named.optimizer.step()

    def update() -> None:
        named.optimizer.zero_grad(set_to_none=False)
        loss(model, data).backward()
        step()

    start = time.perf_counter()
    update()  # compiles
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(updates):
        update()
    return updates * N_STEPS * NUM_ENVS / (time.perf_counter() - start), compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time a compiled update")
    args = parser.parse_args()
    from benchmarks.sb3_reference import sb3_throughput

    rows = []
    for _ in range(args.repeats):  # interleaved, so machine load hits both alike
        ours, sb3 = acexp_sps(args.steps), sb3_throughput(args.steps // 4)["sps"]
        rows.append((ours, sb3, ceiling_sps(), ceiling_sps(acting=False)))
    ours, sb3, ceiling, updates_only = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"acexp A2C SPS        {ours:10,.0f}")
    print(f"SB3 A2C SPS          {sb3:10,.0f}")
    print(f"ceiling SPS          {ceiling:10,.0f}  ({ceiling / sb3:.2f} x SB3)")
    print(f"updates-only SPS     {updates_only:10,.0f}  ({updates_only / sb3:.2f} x SB3)")
    if args.compile:
        compiled, seconds = compiled_updates_sps()
        ratio = compiled / updates_only  # same data and model, eager vs torch.compile
        print(f"compiled updates SPS {compiled:10,.0f}  ({ratio:.2f} x eager)")
        print(f"compiling took       {seconds:10.0f} s")
    print(f"throughput ratio     {ours / sb3:10.2f} x SB3 (target >= 5)")
    print(f"headroom             {ours / ceiling:10.0%} of ceiling (target >= 50%)")


if __name__ == "__main__":
    main()
