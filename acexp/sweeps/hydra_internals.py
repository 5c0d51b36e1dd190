"""The one module that uses Hydra's private names or relies on its undocumented behaviour.

Everything else in acexp talks to Hydra through its public API (`hydra.main`, the compose API,
`HydraConfig`, `run_job`, launcher and callback plugins). What is here would break first on a
new Hydra release, so `hydra-core` is bounded in pyproject.toml to the versions the tests cover;
a new release means running the tests against it, then raising the bound.

- `apply_overrides`, `overrides_dirname`: what Hydra's config loader does after composing (apply
  command-line values; name the job's directory from its overrides). Used to make a job's config
  from a sibling's when the two differ only in plain values (`seed=3` for `seed=0`), about 15x
  faster than composing it again.
- `KeptCompositions`: the batched launcher takes the sweeper's compositions instead of
  composing every job a second time.
- `BASIC_SWEEPER`: the class path of Hydra's own sweeper, which has no public name.
"""

from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def apply_overrides(overrides: list[Override], cfg: DictConfig) -> None:
    """Set the overrides' values in `cfg` in place, as Hydra does after composing."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def record_overrides(config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
    """Record a job's own overrides in its config (`hydra.overrides.task` and the directory
    name `hydra.job.override_dirname`), as Hydra's config loader does when it composes."""
    parsed = OverridesParser.create().parse_overrides(sweep_overrides)
    task = [o for o in parsed if not o.is_hydra_override()]
    dirname = config.hydra.job.config.override_dirname
    config.hydra.overrides.task = [o.input_line for o in task]
    config.hydra.job.override_dirname = get_overrides_dirname(
        overrides=task,
        exclude_keys=list(dirname.exclude_keys),
        item_sep=dirname.item_sep,
        kv_sep=dirname.kv_sep,
    )
    return config


class KeptCompositions:
    """The sweeper's compositions of the jobs, for the launcher to take instead of its own; and
    compositions made from a sibling job's where that is what composing would give.

    Hydra's sweepers compose every job once to check it (`validate_batch_is_legal`) and a
    launcher composes it again, since it may run elsewhere. The batched launcher composes in the
    sweeper's process, so the second composition (about 0.1 s a job) would repeat the first:
    the config loader it shares with the sweeper (its `load_sweep_config`, replaced on this
    loader instance only) keeps what it composes until the launcher takes it. A sweeper that
    composes nothing leaves the launcher to compose.
    """

    def __init__(self, config_loader: Any) -> None:
        self.kept: dict[tuple[str, ...], DictConfig] = {}
        self.composed: list[tuple[list[str], DictConfig]] = []  # siblings for the others
        self.compose_fully = config_loader.load_sweep_config
        config_loader.load_sweep_config = self.compose_and_keep  # this instance only

    def compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """As the config loader's `load_sweep_config`, from a sibling where one will do."""
        from acexp.config.overrides import with_plain_values

        for sibling in self.composed:
            config = with_plain_values(sweep_overrides, sibling)
            if config is not None:
                return record_overrides(config, sweep_overrides)
        config = self.compose_fully(master_config, sweep_overrides)
        self.composed.append((list(sweep_overrides), config))
        return config

    def compose_and_keep(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        config = self.compose(master_config, sweep_overrides)
        self.kept[tuple(sweep_overrides)] = config
        return config

    def take(self, master_config: DictConfig, overrides: Sequence[str]) -> DictConfig:
        """The job's config: the sweeper's composition if it made one, else a new one."""
        kept = self.kept.pop(tuple(overrides), None)
        return kept if kept is not None else self.compose(master_config, list(overrides))

    def forget(self) -> None:
        """Drop what no launch took (a sweeper may check jobs it then does not launch)."""
        self.kept.clear()
