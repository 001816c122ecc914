"""The registry: the whole feature graph, built explicitly from modules or specs and checked at once."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mediamesh.features.errors import (
    CycleError,
    DefinitionError,
    DuplicateFeatureError,
    InputTypeError,
    UnknownFeatureError,
    UnknownInputError,
    did_you_mean,
)
from mediamesh.features.spec import ROOT_INPUTS, FeatureSpec, spec_of

__all__ = ["Registry"]


class Registry(Mapping[str, FeatureSpec]):
    """An immutable, validated set of features, in dependency order.

    Built with ``Registry(specs)`` or ``Registry.from_modules(module, ...)``; building it checks the whole
    graph and raises a :class:`DefinitionError` naming the feature at fault.
    """

    def __init__(self, specs: Iterable[FeatureSpec | Any]) -> None:
        by_name: dict[str, FeatureSpec] = {}
        for item in specs:
            spec = _spec(item)
            if spec.name in ROOT_INPUTS:
                raise DefinitionError(f"feature name {spec.name!r} is reserved for an input that comes with the asset")
            if spec.name in by_name:
                other = by_name[spec.name]
                raise DuplicateFeatureError(
                    f"feature {spec.name!r} is defined twice: in {_where(other)} and in {_where(spec)}"
                )
            by_name[spec.name] = spec
        self._specs = types.MappingProxyType(by_name)
        self._check_inputs()
        self.order: tuple[str, ...] = self._topological_order()

    @classmethod
    def from_modules(cls, *modules: types.ModuleType) -> Registry:
        """Every ``@feature`` function defined in the given modules (not ones they merely import)."""
        specs = []
        for module in modules:
            for _, obj in inspect.getmembers(module, inspect.isfunction):
                spec = spec_of(obj)
                if spec is not None and obj.__module__ == module.__name__:
                    specs.append(spec)
        return cls(specs)

    @classmethod
    def compose(cls, sources: Iterable[Iterable[FeatureSpec | Any]]) -> Registry:
        """One registry from several sources in order (the built-ins, then plugins), checked whole.

        A feature of any source may read a feature of any other. A feature takes the place of a same-named
        one from an earlier source only when it was declared with ``replaces=True``; otherwise the two are a
        :class:`DuplicateFeatureError` naming both modules. A module reached twice counts once.
        """
        chosen: dict[str, FeatureSpec] = {}
        for source in sources:
            named_here: set[str] = set()
            for spec in map(_spec, source):
                earlier = chosen.get(spec.name)
                if earlier is not None and earlier.fn is spec.fn:
                    continue
                if spec.name in named_here and earlier is not None:
                    raise DuplicateFeatureError(
                        f"feature {spec.name!r} is defined twice: in {_where(earlier)} and in {_where(spec)}"
                    )
                named_here.add(spec.name)
                if earlier is None and spec.replaces:
                    raise DefinitionError(
                        f"feature {spec.ref} ({_where(spec)}) is declared replaces=True, but no earlier source "
                        f"defines {spec.name!r}.{did_you_mean(spec.name, chosen)}"
                    )
                if earlier is not None and not spec.replaces:
                    raise DuplicateFeatureError(
                        f"feature {spec.name!r} is defined twice: in {_where(earlier)} and in {_where(spec)}; "
                        f"declare the later one @feature(..., replaces=True) to replace the earlier"
                    )
                chosen[spec.name] = spec
        return cls(chosen.values())

    def __getitem__(self, name: str) -> FeatureSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"no feature named {name!r}.{did_you_mean(name, self._specs)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self._specs)

    def replace(self, *specs: FeatureSpec) -> Registry:
        """A new registry with the given specs swapped in by name (a version bump, other params)."""
        for spec in specs:
            if spec.name not in self._specs:
                raise DefinitionError(f"cannot replace unknown feature {spec.name!r}.{did_you_mean(spec.name, self)}")
        swapped = {**self._specs, **{s.name: s for s in specs}}
        return Registry(swapped.values())

    def resolve(self, name: str) -> FeatureSpec:
        """Like ``registry[name]`` but raising a DefinitionError with a suggestion."""
        if name not in self._specs:
            raise UnknownFeatureError(f"no feature named {name!r}.{did_you_mean(name, self._specs)}")
        return self._specs[name]

    def closure(self, targets: Iterable[str]) -> tuple[str, ...]:
        """The targets and everything they depend on, in dependency order."""
        needed: set[str] = set()
        stack = [self.resolve(t).name for t in targets]
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            stack.extend(i for i in self._specs[name].input_names if i not in ROOT_INPUTS)
        return tuple(n for n in self.order if n in needed)

    def roots_of(self, name: str) -> frozenset[str]:
        """The root inputs (``source``, ``subtitles``, ...) that ``name`` reads, directly or not."""
        return frozenset(i for n in self.closure([name]) for i in self._specs[n].input_names if i in ROOT_INPUTS)

    def dependents(self, name: str) -> tuple[str, ...]:
        """Every feature that reads ``name``, directly or not, in dependency order."""
        found = {name}
        for n in self.order:
            if any(i in found for i in self._specs[n].input_names):
                found.add(n)
        found.discard(name)
        return tuple(n for n in self.order if n in found)

    def _check_inputs(self) -> None:
        for spec in self._specs.values():
            for inp in spec.inputs:
                if inp.name in ROOT_INPUTS:
                    producer_type: Any = ROOT_INPUTS[inp.name]
                elif inp.name in self._specs:
                    producer_type = self._specs[inp.name].output
                else:
                    raise UnknownInputError(
                        f"feature {spec.ref} ({_where(spec)}) reads input {inp.name!r}, which no feature "
                        f"produces.{did_you_mean(inp.name, [*self._specs, *ROOT_INPUTS])}"
                    )
                if not _accepts(inp.annotation, producer_type):
                    raise InputTypeError(
                        f"feature {spec.ref} annotates input {inp.name!r} as {_type_name(inp.annotation)}, "
                        f"but {inp.name!r} produces {_type_name(producer_type)} (in {_where(spec)})"
                    )

    def _topological_order(self) -> tuple[str, ...]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                loop = [*path[path.index(name) :], name]
                raise CycleError(f"features depend on each other in a cycle: {' -> '.join(loop)}")
            state[name] = 1
            for dep in self._specs[name].input_names:
                if dep not in ROOT_INPUTS:
                    visit(dep, [*path, name])
            state[name] = 2
            order.append(name)

        for name in sorted(self._specs):
            visit(name, [])
        return tuple(order)


def _spec(item: FeatureSpec | Any) -> FeatureSpec:
    spec = item if isinstance(item, FeatureSpec) else spec_of(item)
    if spec is None:
        raise DefinitionError(f"{item!r} is not a feature; decorate it with @feature")
    return spec


def _accepts(annotation: Any, produced: Any) -> bool:
    if annotation is Any or annotation == produced:
        return True
    if isinstance(annotation, type) and isinstance(produced, type):
        return issubclass(produced, annotation)
    origin = typing.get_origin(annotation)
    return origin is not None and origin == typing.get_origin(produced)


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp)


def _where(spec: FeatureSpec) -> str:
    return f"{spec.fn.__module__}.{spec.fn.__qualname__}"
