"""One small registry type shared by every concept (activations, models, datasets, experiments).

A name maps to a factory with a uniform signature; asking for an unknown name raises an
error that lists the valid ones (the timm ``create_act`` pattern).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name. Subclasses KeyError and ValueError so either catch works."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes
        return str(self.args[0])


SOURCES_MODULE = "relustudy.sources"  # registers every source's sources, experiments and claims


class Registry(Generic[T]):
    """Maps names to factories. ``kind`` names the concept in error messages.

    ``filled_by``: a module whose import registers this registry's entries (the source modules
    register experiments and claims); it is imported on the first lookup, so importing the package
    (``relustudy --help``) loads no torch, and every lookup still sees every entry."""

    def __init__(self, kind: str, filled_by: str | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._filled_by = filled_by

    def _fill(self) -> None:
        if self._filled_by is not None:
            module, self._filled_by = self._filled_by, None
            importlib.import_module(module)

    def register(self, name: str, entry: T | None = None):
        """Register ``entry`` under ``name``; usable as a decorator when ``entry`` is omitted."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def get(self, name: str) -> T:
        self._fill()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        self._fill()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._fill()
        return len(self._entries)


Factory = Callable[..., T]
