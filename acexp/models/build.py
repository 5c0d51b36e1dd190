"""The `arch` model of a run, or of a batch of runs, built from the env's spaces."""

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.algos.registry import MODELS
from acexp.models.actor_critic import ActorCritic, stack_members


def build_model(
    cfg: DictConfig, observation_space: gym.Space, action_space: gym.Space, members: int = 1
) -> ActorCritic:
    """The `arch` model for these spaces (spaces are runtime values, never written to cfg)."""
    model_cls = MODELS.get(cfg.arch.name)
    hidden = list(OmegaConf.to_container(cfg.arch.hidden_sizes, resolve=True))
    model = model_cls(
        observation_space,
        action_space,
        hidden,
        cfg.arch.activation,
        cfg.arch.init,
        obs_norm=cfg.env.get("obs_norm", "none"),
        log_std_init=float(cfg.arch.get("log_std_init", 0.0)),
        members=members,
    )
    return model.to(cfg.device)


def build_member_model(
    cfgs: list[DictConfig], observation_space: gym.Space, action_space: gym.Space
) -> ActorCritic:
    """One model for all members, member k initialised as a single run seeded with its seed
    draws its weights; the generator is left where the last member's draws left it."""
    models = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        models.append(build_model(cfg, observation_space, action_space))
    # the batched model's own initial weights are overwritten: they must not move the generator
    with torch.random.fork_rng(devices=[]):
        batched = build_model(cfgs[0], observation_space, action_space, members=len(cfgs))
    return stack_members(models, batched)
