"""Command-line mistakes as one readable line, before Hydra makes a run directory.

Hydra reports an unknown group option or key over several lines; here the same overrides are
composed with Hydra's compose API first and its error is turned into one line. The composed
config is validated too, so a bad value never leaves a run directory behind.
"""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from acexp.errors import ConfigError
from acexp.validate import validate

CONF = Path(__file__).resolve().parents[1] / "conf"


def _one_line(exc: HydraException, overrides: list[str]) -> str:
    """Hydra's message for the common mistakes, in one line that names the override."""
    if isinstance(exc, MissingConfigException) and exc.options:
        group = str(exc.missing_cfg_file).rsplit("/", 1)[0]
        given = next((o for o in overrides if o.lstrip("+~").startswith(f"{group}=")), group)
        return f"{given}: no such option; {group} is one of {', '.join(exc.options)}"
    cause = exc.__cause__
    if isinstance(cause, ConfigKeyError | ConfigAttributeError) and cause.full_key:
        given = next((o for o in overrides if o.startswith(f"{cause.full_key}=")), cause.full_key)
        return (
            f"{given}: unknown key '{cause.full_key}' (check its spelling; "
            f"`python -m acexp --cfg job` shows every key)"
        )
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("Config search path", "provider="))]
    return "; ".join(keep)


def check_overrides(args: list[str]) -> None:
    """Compose and validate a single run's overrides; raise ConfigError in one line.

    Command lines with flags (-m sweeps, --cfg, --help, ...) and resumes go to Hydra as they are.
    """
    if any(arg.startswith("-") for arg in args) or any(a.startswith("resume=") for a in args):
        return
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=args)
    except HydraException as exc:
        raise ConfigError(_one_line(exc, args)) from None
    validate(cfg)
