"""Bad input fails before anything is built: one line naming the key and what is allowed."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from acexp.config import overrides as cli_checks
from acexp.config.overrides import CONF, check_overrides, composed_run, single_runs
from acexp.config.resume import resume_argv
from acexp.errors import ConfigError
from tests.conftest import acexp, make_cfg

# (overrides, a fragment the one-line message must contain)
BAD = [
    (["optim.lr=0"], "optim.lr=0 is invalid; expected a number > 0"),
    (["optim.lr=-3e-4"], "optim.lr=-0.0003 is invalid"),
    (["optim.lr=abc"], "optim.lr='abc' is invalid; expected a number > 0"),
    (["optim=separate", "optim.actor_lr=0"], "optim.actor_lr=0 is invalid"),
    (["optim=separate", "optim.critic_lr=-1"], "optim.critic_lr=-1 is invalid"),
    (["optim.max_grad_norm=-0.5"], "optim.max_grad_norm=-0.5 is invalid; expected null or"),
    (["optim.name=adamw"], "optim.name='adamw' is invalid; expected one of adam, rmsprop, sgd"),
    (["algo.gamma=1.5"], "algo.gamma=1.5 is invalid; expected a number in [0, 1]"),
    (["algo.gamma=-0.1"], "algo.gamma=-0.1 is invalid"),
    (["algo.gae_lambda=2"], "algo.gae_lambda=2 is invalid; expected a number in [0, 1]"),
    (["algo.num_envs=0"], "algo.num_envs=0 is invalid; expected an integer >= 1"),
    (["algo.num_envs=2.5"], "algo.num_envs=2.5 is invalid"),
    (["algo.n_steps=0"], "algo.n_steps=0 is invalid; expected an integer >= 1"),
    (["arch.hidden_sizes=[]"], "arch.hidden_sizes=[] is invalid; expected a non-empty list"),
    (["arch.hidden_sizes=[64,0]"], "arch.hidden_sizes=[64, 0] is invalid"),
    (["arch.hidden_sizes=[-8]"], "arch.hidden_sizes=[-8] is invalid"),
    (["arch.activation=gelu"], "arch.activation='gelu' is invalid; expected one of"),
    (["total_steps=0"], "total_steps=0 is invalid; expected an integer >= 1"),
    (["seed=-1"], "seed=-1 is invalid"),
    (["checkpoint.every_steps=0"], "checkpoint.every_steps=0 is invalid"),
    (["checkpoint.keep=0"], "checkpoint.keep=0 is invalid"),
    (["env.id=CartPol-v1"], "did you mean CartPole-v1"),
    (["arch=sharde"], "arch=sharde: no such option; arch is one of shared, unshared"),
    (["optim=jiont"], "optim=jiont: no such option; optim is one of joint, separate"),
    (["lrr=3"], "lrr=3: unknown key 'lrr'"),
    (["optim.lrr=3"], "optim.lrr=3: unknown key 'optim.lrr'"),
    (["algo=episodic", "algo.max_episodes=0"], "algo.max_episodes=0 is invalid"),
    (["device=tpu"], "device='tpu' is invalid; expected cpu, cuda, cuda:N or mps"),
    (["device=cuda:x"], "device='cuda:x' is invalid; expected cpu, cuda, cuda:N or mps"),
    (["log.progress=maybe"], "log.progress='maybe' is invalid; expected auto, true or false"),
    (["log.every_steps=0"], "log.every_steps=0 is invalid; expected auto or an integer >= 1"),
    (["log.console_every_seconds=0"], "log.console_every_seconds=0 is invalid"),
    (["+optim.foo=1"], "+optim.foo=1: acexp does not read optim.foo in this config"),
    (
        ["++optim.epss=1"],
        "acexp does not read optim.epss in this config, so it would be "
        "ignored (did you mean optim.eps?)",
    ),
    (["+algo.n_epochs=3"], "+algo.n_epochs=3: acexp does not read algo.n_epochs"),  # a2c: PPO's
    (["-m", "arch=shared,foo", "seed=0,1"], "arch=foo: no such option"),
    (["-m", "seed=0,1", "optim.lr=1e-3,-1"], "optim.lr=-1 is invalid"),
    (["arch.hidden_sizes=["], "no viable alternative at input '['"),
    # a value of the wrong type, which Hydra refuses as it composes: the same words
    (["seed=x"], "seed='x' is invalid; expected an integer in [0, 2**32)"),
    (["seed=4294967296"], "seed=4294967296 is invalid; expected an integer in [0, 2**32)"),
    (["total_steps=1e5"], "total_steps=1e5 is invalid; expected an integer >= 1"),
    (["arch.hidden_sizes=[64.5]"], "arch.hidden_sizes=[64.5] is invalid; expected a non-empty"),
    (["stop_on_solve=maybe"], "stop_on_solve='maybe' is invalid; expected true or false"),
    (["algo=ppo", "algo.clip_range=x"], "algo.clip_range='x' is invalid; expected a number > 0"),
    (["env.kwargs=5"], "env.kwargs=5 is invalid; expected a mapping"),
    (["+optim.alpha=2"], "optim.alpha=2 is invalid; expected a number in [0, 1]"),
    (["optim.actor_lr=${.lrr}"], "optim.actor_lr: Interpolation key 'lrr' not found"),
    (["env.reward_gamma=1.5"], "env.reward_gamma=1.5 is invalid; expected a number in [0, 1]"),
    (
        ["-m", "seed=0,1", "hydra/launcher=batched", "hydra.launcher.n_jobs=two"],
        "hydra.launcher.n_jobs=two is invalid: Value 'two' of type 'str' could not be converted "
        "to Integer",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_override_is_one_line_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_overrides(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_good_overrides_pass() -> None:
    check_overrides(["arch=unshared", "optim=separate", "optim.actor_lr=1e-3", "seed=3"])
    check_overrides(["log.every_steps=auto", "log.progress=true", "++optim.lr=1e-3"])
    check_overrides(["+optim.alpha=0.9", "+env.kwargs.max_episode_steps=50"])  # read if given
    check_overrides(["algo=ppo", "+experiment=cartpole_ppo"])
    check_overrides(["-m", "arch=shared,unshared", "optim.lr=3e-2,3e-4", "seed=0,1,2"])


def test_a_sweep_is_checked_through_single_runs_covering_every_value() -> None:
    assert single_runs(["a=1,2", "b=x,y,z", "c=3", "d=interval(0,1)"]) == [
        ["a=1", "b=x", "c=3"],
        ["a=2", "b=x", "c=3"],
        ["a=1", "b=y", "c=3"],
        ["a=1", "b=z", "c=3"],
    ]


def test_a_sweeps_other_values_give_the_configs_composing_them_gives() -> None:
    """check_overrides applies a changed plain value to the first run's config instead of
    composing again; for every kind of override the result must be what composing gives."""
    sweep = [
        "arch=shared,unshared",  # a group: composed
        "seed=0,5",
        "optim.lr=1e-3,2e-2",  # actor_lr and critic_lr follow it by interpolation
        "arch.hidden_sizes=[64],[32,32]",
        "+env.kwargs={max_episode_steps:50},{sutton_barto_reward:true}",  # added: composed
        "log.every_steps=auto,100",
    ]
    runs = single_runs(sweep)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        first = (runs[0], compose(config_name="config", overrides=runs[0]))
        for overrides in runs[1:]:
            cfg = composed_run(overrides, first)
            assert OmegaConf.to_container(cfg, resolve=True) == OmegaConf.to_container(
                compose(config_name="config", overrides=overrides), resolve=True
            ), overrides
            assert OmegaConf.is_struct(cfg)  # a misspelt key still fails
    faster = next(run for run in runs if "optim.lr=0.02" in run)
    assert composed_run(faster, first).optim.critic_lr == 2e-2


def test_a_sweep_over_seeds_is_composed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    composed = []
    compose_with_hydra = cli_checks.compose
    monkeypatch.setattr(
        cli_checks, "compose", lambda **kw: composed.append(kw) or compose_with_hydra(**kw)
    )
    check_overrides(["-m", "seed=range(20)", "optim.lr=1e-3,2e-3"])
    assert len(composed) == 1
    with pytest.raises(ConfigError, match="optim.lr=-1 is invalid"):  # still checked each
        check_overrides(["-m", "seed=range(20)", "optim.lr=1e-3,2e-3,-1"])


def test_resume_refuses_other_overrides_and_non_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a run directory"):
        resume_argv([f"resume={tmp_path}"])
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ConfigError, match=r"takes no other arguments \(got: optim.lr=1\)"):
        resume_argv([f"resume={tmp_path}", "optim.lr=1"])
    assert resume_argv([f"resume={tmp_path}"]) == [
        f"resume='{tmp_path}'",
        f"hydra.run.dir='{tmp_path}'",
        "hydra.output_subdir=null",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch=foo"], "acexp: error: arch=foo: no such option; arch is one of shared, unshared"),
        (["lrr=3"], "acexp: error: lrr=3: unknown key 'lrr'"),
        (["resume=RUN", "total_steps=5"], "acexp: error: resume="),
        (["resume=."], "is not a run directory"),
    ],
    ids=["group", "key", "resume-override", "resume-not-a-run"],
)
def test_the_real_cli_fails_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("RUN", str(tmp_path)) for a in args]
    result = acexp(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()  # failed before Hydra made a run directory


def test_no_metrics_json_when_a_run_fails_validation(tmp_path: Path) -> None:
    from acexp.run import run
    from tests.conftest import make_cfg

    with pytest.raises(ConfigError):
        run(make_cfg("algo.n_steps=0"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_a_saved_config_missing_a_newer_key_fails_in_one_line(tmp_path: Path) -> None:
    cfg = OmegaConf.to_container(make_cfg())
    del cfg["arch"]["init"]  # as in a run saved before arch.init existed
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    result = acexp(str(tmp_path), cwd=tmp_path, module="acexp.evaluate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "acexp.evaluate: error: arch.init is missing from the config (a run saved by an older "
        "acexp lacks the keys added since; start it again with this version)"
    ]


def test_a_saved_config_is_checked_against_the_schema_without_hydra() -> None:
    """A run directory's config is plain YAML, without types: validation checks kinds too."""
    from acexp.config.validate import validate

    cfg = OmegaConf.create(OmegaConf.to_container(make_cfg()))
    cfg.env.clip_reward = 1  # an int, as written before the schema typed it: still valid
    validate(cfg)
    cfg.total_steps = 1.5e5
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert str(error.value) == "total_steps=150000.0 is invalid; expected an integer >= 1"
