"""Models built from spaces; the registry's errors."""

import gymnasium as gym
import pytest
import torch

import acexp.algos.components  # noqa: F401
from acexp.algos.registry import MODELS, TRAINERS, Registry
from acexp.errors import ConfigError


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
        actions, values, _ = model.act(obs)
    frequencies = torch.bincount(actions, minlength=3).float() / actions.numel()
    # 60k draws: each frequency is within 0.01 of its probability (> 4 standard errors)
    assert frequencies.tolist() == pytest.approx(dist.probs[0].tolist(), abs=0.01)
    assert torch.allclose(values, value.expand(60_000))


@pytest.mark.parametrize("name", ["shared", "unshared"])
@pytest.mark.parametrize(
    "action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,))], ids=["discrete", "box"]
)
def test_evaluate_actions_gives_the_distributions_numbers(
    name: str, action_space: gym.Space
) -> None:
    torch.manual_seed(0)
    model = MODELS.get(name)(gym.spaces.Box(-1, 1, (4,)), action_space, [16], "tanh", "torch")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # away from the small initial policy logits
    obs = torch.randn(7, 4)
    dist, value = model(obs)
    actions = dist.sample()
    log_prob, entropy, values = model.evaluate_actions(obs, actions)
    assert torch.allclose(log_prob, dist.log_prob(actions), atol=1e-6)
    assert torch.allclose(entropy, dist.entropy(), atol=1e-6)
    assert torch.equal(values, value)
    # and the gradients agree: the cheaper path is the same function
    grads = []
    by_distribution = dist.log_prob(actions).sum() + dist.entropy().sum()
    for loss in (by_distribution, log_prob.sum() + entropy.sum()):
        model.zero_grad()
        loss.backward(retain_graph=True)
        grads.append(torch.cat([p.grad.flatten() for p in model.actor_parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.parametrize(
    "action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,))], ids=["discrete", "box"]
)
def test_act_log_prob_is_the_policys_log_prob_of_the_action(action_space: gym.Space) -> None:
    torch.manual_seed(0)
    model = MODELS.get("unshared")(gym.spaces.Box(-1, 1, (4,)), action_space, [16], "tanh")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        obs = torch.randn(9, 4)
        actions, values, log_prob = model.act(obs, with_log_prob=True)
        dist, value = model(obs)
        assert model.act(obs)[2] is None  # not computed unless asked
    assert torch.allclose(log_prob, dist.log_prob(actions), atol=1e-5)
    assert torch.allclose(values, value)
