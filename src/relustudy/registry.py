"""One small registry type shared by every concept (activations, models, datasets, experiments).

A name maps to a factory with a uniform signature; asking for an unknown name raises an
error that lists the valid ones (the timm ``create_act`` pattern).
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name. Subclasses KeyError and ValueError so either catch works."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to factories. ``kind`` names the concept in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None):
        """Register ``entry`` under ``name``; usable as a decorator when ``entry`` is omitted."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


Factory = Callable[..., T]
