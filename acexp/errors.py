"""Errors meaning "the user asked for something we cannot do": one line, no traceback."""


class ConfigError(ValueError):
    """Bad input: an unknown option, a wrong type, a value out of range, an unsupported space."""


class MissingExtraError(ConfigError):
    """An optional dependency is missing; the message names the pip extra that installs it."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs an optional dependency: pip install 'acexp[{extra}]'")


class NonFiniteError(RuntimeError):
    """A loss or parameter became NaN or Inf during training."""


class SaveError(RuntimeError):
    """A file of the run could not be written (a full disk, a quota, a read-only mount).

    The message says which file, why, and what is still intact; files are written atomically,
    so nothing saved before is lost.
    """
