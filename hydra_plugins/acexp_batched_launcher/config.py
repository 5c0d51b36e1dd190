"""The settings of `hydra/launcher=batched`, registered with Hydra's ConfigStore."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.acexp_batched_launcher.batched_launcher.BatchedLauncher"
    max_batch_size: int = 64  # most runs trained together as one batch; larger groups are split
    n_jobs: int = -1  # batches trained side by side, one process each; -1: one per core


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="acexp"
)
