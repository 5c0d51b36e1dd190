"""Explicit, name-keyed registries of models and trainers.

Components register themselves with a decorator; all registrations are imported in
`acexp.algos.components`. A duplicate name raises, and an unknown name lists the known ones.
"""

from collections.abc import Callable
from typing import Generic, TypeVar

from acexp.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to components of one kind (e.g. "model", "trainer")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            raise ConfigError(f"unknown {self.kind} '{name}'; known {self.kind}s: {known}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)


MODELS: Registry = Registry("model")
TRAINERS: Registry = Registry("trainer")
register_model = MODELS.register
register_trainer = TRAINERS.register
