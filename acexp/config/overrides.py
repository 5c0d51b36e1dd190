"""Command-line mistakes as one readable line, before Hydra makes a run directory.

Hydra reports an unknown group option or key over several lines; here the same overrides are
composed with Hydra's compose API first and its error is turned into one line. The composed
config is validated too, so a bad value never leaves a run directory behind, and a sweep with a
typo in one of its values fails before its first job rather than in every job.
"""

import copy
import difflib
import re
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from acexp.errors import ConfigError, MissingExtraError
from acexp.sweeps.hydra_internals import apply_overrides

# The Hydra config tree: conf/ at the top of the repo, shipped by a wheel or a non-editable
# install inside the package as acexp/conf (pyproject.toml); a checkout or an editable install
# has only the top-level conf/, next to acexp/.
_PACKAGE = Path(__file__).resolve().parents[1]  # the acexp package
CONF = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"


# Hydra options that a Hydra plugin from one of acexp's extras registers: without the extra,
# Hydra knows no such option.
PLUGIN_EXTRAS = {
    "hydra/launcher/joblib": "launchers",
    "hydra/launcher/submitit_local": "launchers",
    "hydra/launcher/submitit_slurm": "launchers",
    "hydra/sweeper/optuna": "launchers",
}


def _one_line(exc: HydraException, overrides: list[str]) -> str:
    """Hydra's message for the common mistakes, in one line that names the override."""
    if isinstance(exc, MissingConfigException) and exc.options:
        group, option = str(exc.missing_cfg_file).rsplit("/", 1)
        extra = PLUGIN_EXTRAS.get(f"{group}/{option}")  # also from a preset's defaults list
        if extra:
            return str(MissingExtraError(f"{group}={option}", extra))
        given = next((o for o in overrides if o.lstrip("+~").startswith(f"{group}=")), group)
        return f"{given}: no such option; {group} is one of {', '.join(exc.options)}"
    cause = exc.__cause__
    if isinstance(cause, ConfigKeyError | ConfigAttributeError) and cause.full_key:
        given = next((o for o in overrides if o.startswith(f"{cause.full_key}=")), cause.full_key)
        return (
            f"{given}: unknown key '{cause.full_key}' (check its spelling; "
            f"`python -m acexp --cfg job` shows every key)"
        )
    if isinstance(cause, ValidationError) and cause.full_key:  # a value of the wrong type
        return _wrong_type(cause, overrides)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("Config search path", "provider="))]
    return "; ".join(keep)


def _wrong_type(cause: ValidationError, overrides: list[str]) -> str:
    """A value Hydra could not convert to its setting's type, as validation says a value is out
    of its setting's range (Hydra's own words for its settings, e.g. hydra.launcher.n_jobs)."""
    from acexp.config.schema import setting_at

    key = re.sub(r"\[\d+\]", "", str(cause.full_key))  # arch.hidden_sizes[0]: the list's key
    given = next((o for o in overrides if o.lstrip("+").startswith(f"{key}=")), None)
    setting = setting_at(key, cause.object_type)
    if setting is None or setting.allowed() is None:
        return f"{given or key} is invalid: {str(cause.msg).splitlines()[0]}"
    if given is None:  # a value from a config file
        return str(setting.invalid(cause.value))
    value = OverridesParser.create().parse_override(given).value()
    written = repr(value) if isinstance(value, str) else given.split("=", 1)[1]
    return str(setting.invalid(value, written))


def _is_group(override: str) -> bool:
    return (CONF / override.lstrip("+~").split("=", 1)[0].replace(".", "/")).is_dir()


def single_runs(args: list[str]) -> list[list[str]]:
    """Single-run command lines that, together, use every value of every sweep in `args`.

    The first holds each sweep's first value; each other one changes one sweep's value. Interval
    sweeps (Optuna) cannot be enumerated and are left to the sweeper.
    """
    parsed = OverridesParser.create().parse_overrides(args)
    values: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            values.append([override.input_line])
        elif override.value_type != ValueType.INTERVAL_SWEEP:
            key = override.get_key_element()
            values.append([f"{key}={v}" for v in override.sweep_string_iterator()])
    first = [options[0] for options in values]
    runs = [first]
    for i, options in enumerate(values):
        runs += [first[:i] + [option] + first[i + 1 :] for option in options[1:]]
    return runs


def check_added_keys(overrides: list[str], cfg: DictConfig) -> None:
    """Refuse `+key=value` (and `++key=value`) for a key acexp does not read.

    Hydra adds any key with `+`, and nothing would read it: the run would silently ignore it.
    What may be added is what the schema declares opt-in, or a key inside a mapping setting
    (`env.kwargs`). `cfg` is composed without these overrides; config groups (`+experiment=...`)
    and `hydra.*` keys are Hydra's business.
    """
    from acexp.config.schema import addable, settings

    found = settings(cfg)
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if not (override.is_add() or override.is_force_add()) or key.startswith("hydra"):
            continue
        if (CONF / key.replace(".", "/")).is_dir():
            continue  # a config group, e.g. +experiment=cartpole_ppo
        if OmegaConf.select(cfg, key, default=None) is not None and override.is_force_add():
            continue  # ++key=value on a key the config has: a plain override
        if addable(key, found):
            continue
        close = difflib.get_close_matches(key, list(found), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(
            f"{override.input_line}: acexp does not read {key} in this config, so it would be "
            f"ignored{hint}; `python -m acexp --cfg job` shows every key"
        )


def _is_plain_value(override: Override) -> bool:
    """`key=value` for a key of the config: no group, no +/~, no hydra key, no dict (a dict
    would merge into the value it replaces)."""
    return not (
        override.is_add()
        or override.is_force_add()
        or override.is_delete()
        or override.is_hydra_override()
        or _is_group(override.input_line)
        or isinstance(override.value(), dict)
    )


def with_plain_values(
    overrides: list[str], sibling: tuple[list[str], DictConfig]
) -> DictConfig | None:
    """The config of `overrides`, made from a sibling's (its overrides and composed config)
    when the two differ only in plain values (`seed=3` for `seed=0`), by applying those values
    to a copy as Hydra applies command-line values after composing: about 15x faster than
    composing. None when they differ otherwise (a group, +/~, a hydra key, another key, their
    number).
    """
    sibling_overrides, sibling_cfg = sibling
    if len(overrides) != len(sibling_overrides):
        return None
    pairs = [(o, s) for o, s in zip(overrides, sibling_overrides, strict=True) if o != s]
    parser = OverridesParser.create()
    parsed = parser.parse_overrides([o for o, _ in pairs])
    replaced = parser.parse_overrides([s for _, s in pairs])
    for new, old in zip(parsed, replaced, strict=True):  # each a new value of the same key
        if new.key_or_group != old.key_or_group or not (
            _is_plain_value(new) and _is_plain_value(old)
        ):
            return None
    cfg = copy.deepcopy(sibling_cfg)
    apply_overrides(parsed, cfg)
    return cfg


def composed_run(overrides: list[str], first: tuple[list[str], DictConfig] | None) -> DictConfig:
    """The config of `overrides`: from the first run's where they differ from it in plain
    values only (`with_plain_values`; a sweep over 100 seeds would otherwise compose 100 times
    before its first job), else composed."""
    cfg = None if first is None else with_plain_values(overrides, first)
    return cfg if cfg is not None else compose(config_name="config", overrides=overrides)


def _first_run(overrides: list[str], launching: Callable[[DictConfig], None] | None) -> DictConfig:
    """The first run's config, composed; `launching` gets its Hydra config first."""
    if launching is None:
        return compose(config_name="config", overrides=overrides)
    cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    launching(cfg.hydra)
    with open_dict(cfg):
        del cfg["hydra"]  # as compose() returns it without return_hydra_config
    return cfg


def _validate(cfg: DictConfig) -> None:
    """The run's values and device. acexp.config.validate imports torch (its registries), so it is
    imported here: after a sweep's launcher has had its start (check_overrides)."""
    from acexp.config.validate import check_device, validate

    validate(cfg)
    check_device(cfg.device)


def check_overrides(args: list[str], launching: Callable[[DictConfig], None] | None = None) -> None:
    """Compose and validate the overrides (each value of a `-m` sweep); one-line ConfigError.

    Also refuses added keys acexp does not read, and a device this machine lacks. Command lines
    with other flags (--cfg, --help, -cn, ...) and resumes go to Hydra as they are. A sweep's
    `launching` gets the first run's Hydra config (its `hydra` node) once that is composed,
    before any value is validated (which imports torch): acexp.sweeps.multirun.start_launcher.
    """
    multirun = any(arg in ("-m", "--multirun") for arg in args)
    args = [arg for arg in args if arg not in ("-m", "--multirun")]
    if any(arg.startswith("-") for arg in args) or any(a.startswith("resume=") for a in args):
        return
    try:
        runs = single_runs(args)
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            first = None
            for overrides in runs:
                try:
                    if first is None:
                        cfg = _first_run(overrides, launching if multirun else None)
                    else:
                        cfg = composed_run(overrides, first)
                except HydraException as exc:
                    raise ConfigError(_one_line(exc, overrides)) from None
                if first is None:
                    first = (overrides, cfg)
                _validate(cfg)
            added = [o for o in runs[0] if o.startswith("+")]
            if added:
                base = [o for o in runs[0] if o not in added or _is_group(o)]
                check_added_keys(added, compose(config_name="config", overrides=base))
    except HydraException as exc:  # the override grammar
        raise ConfigError(_one_line(exc, args)) from None
