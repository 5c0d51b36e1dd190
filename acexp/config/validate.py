"""Check the whole config before anything is built: one readable line per mistake.

What is checked is what the schema declares (acexp/config/schema.py): every setting's presence
and allowed values, then the env's cross-key rules.
"""

from omegaconf import DictConfig, OmegaConf

from acexp.config.schema import settings
from acexp.envs.make import check_env, vectorization
from acexp.errors import ConfigError

_ABSENT = object()


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first bad key, its value and what is allowed."""
    for key, setting in settings(cfg).items():
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        except Exception as exc:  # an interpolation that does not resolve, a ??? value
            raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
        if value is _ABSENT:
            if setting.opt_in:
                continue
            raise ConfigError(
                f"{key} is missing from the config (a run saved by an older acexp lacks the "
                "keys added since; start it again with this version)"
            )
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        allowed = setting.allowed()
        if allowed is not None and not allowed.allows(value):
            raise setting.invalid(value)
    check_env(cfg.env)
    vectorization(cfg.env)  # env.vectorization=ale on an env it does not cover fails here


def check_device(device: str) -> None:
    """ConfigError unless this machine has `device` (validate() checks only its spelling: a
    saved run is validated on machines that will not train it, e.g. by acexp.evaluate)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = (
                f"this torch ({torch.__version__}) is built without CUDA"
                if torch.version.cuda is None
                else "no CUDA device is visible"
            )
            raise ConfigError(f"device={device}: CUDA is not available ({why}); use device=cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(
                f"device={device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}: MPS (Apple GPU) is not available; use device=cpu")
