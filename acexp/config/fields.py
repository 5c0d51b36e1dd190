"""How a setting is declared: its default, one-line doc, allowed values and what it means to
batching and HParams, as the metadata of a dataclass field (`setting`), read back as `Setting`s.

A range checks the value's kind too (an integer, a number, ...): a config composed by Hydra has
its types checked already, a config read back from a run directory has not.
"""

import copy
import dataclasses
import functools
import importlib
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from acexp.errors import ConfigError

Flat = Mapping[str, Any]  # a config flattened to dotted keys: {"optim.mode": "joint", ...}


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a setting allows, and the words an error uses for them."""

    allows: Callable[[Any], bool]
    words: Callable[[], str]  # called when needed: a registry's names import torch

    @property
    def text(self) -> str:
        return self.words()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fixed(allows: Callable[[Any], bool], text: str) -> Range:
    return Range(allows, lambda: text)


def at_least(low: float, *, integer: bool = False, note: str = "") -> Range:
    kind, test = ("an integer", _integer) if integer else ("a number", _number)
    return fixed(lambda v: test(v) and v >= low, f"{kind} >= {low}{note}")


def above(low: float) -> Range:
    return fixed(lambda v: _number(v) and v > low, f"a number > {low}")


def between(low: float, high: float) -> Range:
    return fixed(lambda v: _number(v) and low <= v <= high, f"a number in [{low}, {high}]")


def one_of(options: Callable[[], list[str]] | list[str]) -> Range:
    """One of `options`, or of what a callable returns (a registry's names, read when used)."""
    names = options if callable(options) else lambda: list(options)
    return Range(lambda v: v in names(), lambda: f"one of {', '.join(names())}")


def names_in(module: str, attribute: str) -> Callable[[], list[str]]:
    """The names of a registry or constant of `module`, imported when first needed (most import
    torch, which the command line's checks stay clear of until a value is wrong)."""

    def names() -> list[str]:
        import acexp.algos.components  # noqa: F401  (fills the registries)

        found = getattr(importlib.import_module(module), attribute)
        return found.names() if hasattr(found, "names") else list(found)

    return names


def nullable(inner: Range) -> Range:
    return Range(lambda v: v is None or inner.allows(v), lambda: f"null or {inner.text}")


NUMBER = fixed(_number, "a number")
BOOL = fixed(lambda v: isinstance(v, bool), "true or false")
SIZES = fixed(
    lambda v: isinstance(v, list) and len(v) > 0 and all(_integer(x) and x >= 1 for x in v),
    "a non-empty list of integers >= 1, e.g. [64,64]",
)
DEVICE = fixed(
    lambda v: isinstance(v, str) and re.fullmatch(r"cpu|cuda(:\d+)?|mps", v) is not None,
    "cpu, cuda, cuda:N or mps",
)


def when(key: str, *values: Any) -> Callable[[Flat], bool]:
    """A setting that applies only while `key` has one of `values` (e.g. optim.mode=joint)."""
    return lambda flat: flat.get(key) in values


def box_actions(flat: Flat) -> bool:
    """Whether the run's env acts in a Box (a Gaussian policy); a config does not say (e.g.
    LunarLander-v3 with `continuous=True`), so the env is made, once per id and kwargs."""
    prefix = "env.kwargs."
    kwargs = {k.removeprefix(prefix): v for k, v in sorted(flat.items()) if k.startswith(prefix)}
    return _acts_in_a_box(flat["env.id"], json.dumps(kwargs))


@functools.lru_cache
def _acts_in_a_box(env_id: str, kwargs_json: str) -> bool:
    from acexp.envs.make import env_spec

    try:
        env_spec(env_id)  # registers ALE ids
        import gymnasium as gym

        with gym.make(env_id, **json.loads(kwargs_json)) as env:
            return isinstance(env.action_space, gym.spaces.Box)
    except Exception:  # e.g. an extra not installed: keep the setting rather than guess
        return True


@dataclasses.dataclass(frozen=True)
class Setting:
    """One key of the config, as its schema declares it."""

    key: str  # the command-line name, e.g. optim.lr
    type: Any  # the field's annotation: int, float, bool, str, list[int], ...
    default: Any
    doc: str
    range: Range | None = None  # None: any value of its type
    member: bool = False  # may differ between the members of one batch (a per-member scalar)
    trains_alone: bool = False  # a run that sets it (not null) trains in a batch of its own
    applies: Callable[[Flat], bool] | None = None  # None: always; else only where this holds
    hparam: bool = True  # False: bookkeeping (where a run writes, how it logs), not in HParams
    label: bool = False  # a number that names rather than measures (shown as text in HParams)
    opt_in: bool = False  # absent from the config unless added with +key=value

    def allowed(self) -> Range | None:
        """The values allowed: the declared range; for a bool, true or false."""
        return self.range or (BOOL if plain_type(self.type) is bool else None)

    def invalid(self, value: Any, written: str | None = None) -> ConfigError:
        """The one-line error for a value this setting does not allow. `written`: the value as
        the command line gave it (one Hydra could not convert); else the value, text quoted and
        a float setting's whole number as it was given (0, which Hydra made 0.0)."""
        if written is None:
            integral = isinstance(value, float) and value.is_integer() and abs(value) < 1e15
            as_float = plain_type(self.type) is float
            written = repr(int(value)) if integral and as_float else repr(value)
        allowed = self.allowed()
        assert allowed is not None
        return ConfigError(f"{self.key}={written} is invalid; expected {allowed.text}")


def setting(default: Any, doc: str, allowed: Range | None = None, **flags: Any) -> Any:
    """A dataclass field declaring one setting (flags: see `Setting`)."""
    metadata = {"doc": doc, "range": allowed, **flags}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def node(schema: type, doc: str, **flags: Any) -> Any:
    """A dataclass field holding a node of settings; `flags` hold for all of them."""
    return dataclasses.field(default_factory=schema, metadata={"doc": doc, **flags})


def plain_type(annotation: Any) -> Any:
    """The type under Optional[...]: Optional[float] -> float."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return args[0] if union and len(args) == 1 else annotation


def settings_of(
    schema: type, prefix: str = "", inherited: Mapping[str, Any] | None = None
) -> dict[str, Setting]:
    """Every setting a schema dataclass declares, by dotted key, nodes flattened; a class's
    `ADDED` dataclass declares the settings it reads only when added (opt-in)."""
    found: dict[str, Setting] = {}
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        own = {k: v for k, v in f.metadata.items() if k not in ("doc", "range")}
        flags = {**(inherited or {}), **own}
        if dataclasses.is_dataclass(hints[f.name]):
            found |= settings_of(hints[f.name], f"{prefix}{f.name}.", flags)
        elif not flags.pop("chosen_by_name", False):
            default = f.default_factory() if callable(f.default_factory) else f.default
            found[prefix + f.name] = Setting(
                prefix + f.name, hints[f.name], default, f.metadata["doc"], f.metadata["range"],
                **flags,
            )  # fmt: skip
    added = getattr(schema, "ADDED", None)
    if added is not None:
        found |= settings_of(added, prefix, {**(inherited or {}), "opt_in": True})
    return found
