"""Models built from spaces; the registry's errors."""

import gymnasium as gym
import pytest
import torch

import acexp.components  # noqa: F401
from acexp.errors import ConfigError
from acexp.registry import MODELS, TRAINERS, Registry


@pytest.mark.parametrize("name", ["shared", "unshared"])
def test_categorical_policy_and_scalar_value(name: str) -> None:
    model = MODELS.get(name)(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(3), [32, 32], "tanh")
    dist, value = model(torch.randn(5, 4))
    assert dist.probs.shape == (5, 3)
    assert dist.probs.sum(-1).tolist() == pytest.approx([1.0] * 5)
    assert value.shape == (5,)
    assert torch.equal(model.value(torch.zeros(2, 4)), model(torch.zeros(2, 4))[1])


def test_discrete_observations_are_one_hot() -> None:
    model = MODELS.get("shared")(gym.spaces.Discrete(48), gym.spaces.Discrete(4), [8], "relu")
    dist, value = model(torch.tensor([0, 47]))
    assert dist.probs.shape == (2, 4) and value.shape == (2,)
    assert model.trunk[0](torch.tensor([2])).tolist() == [[0.0, 0.0, 1.0] + [0.0] * 45]


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown model 'wide'; known models: shared, unshared"):
        MODELS.get("wide")
    with pytest.raises(ConfigError, match="known trainers: .*a2c.*episodic"):
        TRAINERS.get("dqn")


def test_duplicate_registration_raises() -> None:
    registry: Registry = Registry("thing")
    registry.register("x")(object)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("x")(object)


@pytest.mark.parametrize("name", ["shared", "unshared"])
def test_act_samples_from_the_policy_distribution(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS.get(name)(
        gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(3), [8], "tanh", "torch"
    )
    obs = torch.randn(1, 4).expand(60_000, 4)
    with torch.no_grad():
        dist, value = model(obs[:1])
        actions, values = model.act(obs)
    frequencies = torch.bincount(actions, minlength=3).float() / actions.numel()
    # 60k draws: each frequency is within 0.01 of its probability (> 4 standard errors)
    assert frequencies.tolist() == pytest.approx(dist.probs[0].tolist(), abs=0.01)
    assert torch.allclose(values, value.expand(60_000))
