"""The run's settings as TensorBoard's HPARAMS tab shows them."""

from omegaconf import DictConfig, OmegaConf


def hyperparameters(cfg: DictConfig) -> dict:
    """Flat scalars of the run's choices, for TensorBoard's HPARAMS tab."""
    flat: dict = {"seed": cfg.seed, "total_steps": cfg.total_steps, "env": cfg.env.id}
    for group in ("arch", "algo", "optim"):
        for key, value in OmegaConf.to_container(cfg[group], resolve=True).items():
            flat[f"{group}.{key}"] = (
                value if isinstance(value, int | float | str | bool) else str(value)
            )
    return flat
