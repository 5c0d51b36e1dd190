"""A sweep's jobs on disk: the directories Hydra made for them, wherever they lie."""

from pathlib import Path

JOB_RECORD = Path(".hydra") / "overrides.yaml"  # Hydra writes it into every job's directory


def job_dirs(root: Path) -> list[Path]:
    """The job directories under `root`, at any depth, in name order."""
    return sorted(
        p.parent.parent for p in Path(root).rglob(JOB_RECORD.name) if p.parent.name == ".hydra"
    )
