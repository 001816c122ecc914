"""Planning: (assets x targets) -> value keys -> what is missing, in dependency order.

Keys follow from identities alone, so the whole plan is computed in memory and checked against the store
with one bulk query: *to compute = plan keys - stored keys*.

The media gate: ``encode`` (when the registry has it) is where a bad input fails. A feature that does not
read it (the title metadata's embedding) waits for it all the same, as an ordering that is no part of its
key, so an asset whose media is bad gets no value at all, and its stored values keep their keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mediamesh.features.identity import KeyPrefix, attachment_set_key
from mediamesh.features.registry import Registry
from mediamesh.features.spec import MEDIAFM, ROOT_INPUTS, SOURCE, SUBTITLES, TITLE, FeatureSpec
from mediamesh.store import Store

__all__ = ["MEDIA_GATE", "Plan", "PlannedValue", "RootInput", "plan", "planning_order", "root_inputs"]

#: The feature every other feature of an asset is computed after: it fails for media that is not a video.
MEDIA_GATE = "encode"


@dataclass(frozen=True, slots=True)
class PlannedValue:
    """One value of one asset: its key, the keys of the inputs it is computed from, and the key of the
    asset's media gate when the feature does not read it (``gate``: an ordering, not part of the key)."""

    key: str
    asset: str
    spec: FeatureSpec = field(repr=False)
    model_fingerprint: str | None
    inputs: tuple[tuple[str, str], ...]  # (input name, value key or asset id), in parameter order
    gate: str | None = None

    @property
    def feature(self) -> str:
        return self.spec.name

    @property
    def ref(self) -> str:
        return self.spec.ref

    @property
    def upstream_keys(self) -> tuple[str, ...]:
        """The values that must be stored before this one is computed: its inputs that features produce,
        and its gate."""
        keys = tuple(k for n, k in self.inputs if n not in ROOT_INPUTS)
        return (*keys, self.gate) if self.gate is not None else keys


@dataclass(frozen=True)
class RootInput:
    """An input that comes with the asset (its subtitle files, its title metadata, the promoted checkpoint):
    its key, and the records it was keyed from, which are what a value planned with it reads."""

    key: str
    records: tuple[Any, ...]


@dataclass(frozen=True)
class Plan:
    """Every planned value, which of them are stored, the missing ones needed for the targets, and the root
    inputs they were keyed from, by (asset, root)."""

    values: tuple[PlannedValue, ...]
    stored: frozenset[str]
    missing: tuple[PlannedValue, ...]
    targets: tuple[str, ...]
    roots: dict[tuple[str, str], RootInput] = field(default_factory=dict)

    @property
    def reused(self) -> tuple[PlannedValue, ...]:
        """Stored target values: what this plan reads instead of computing."""
        return tuple(v for v in self.values if v.key in self.stored and v.feature in self.targets)

    def for_asset(self, asset: str) -> tuple[PlannedValue, ...]:
        return tuple(v for v in self.values if v.asset == asset)

    def key_of(self, asset: str, feature: str) -> str:
        for v in self.values:
            if v.asset == asset and v.feature == feature:
                return v.key
        raise KeyError(f"{feature!r} of asset {asset[:12]} is not in this plan")


def plan(store: Store, registry: Registry, assets: Sequence[str], targets: Iterable[str] | None = None) -> Plan:
    """Plan the ``targets`` (default: every feature) for ``assets``; one query finds what is stored."""
    order, gated = planning_order(registry, targets)
    wanted = set(targets) if targets is not None else set(order)
    models = {name: registry[name].model_fingerprint() for name in order}
    specs = [(name, registry[name], registry[name].input_names) for name in order]
    prefixes = {name: KeyPrefix(spec.name, spec.version, spec.params, models[name]) for name, spec, _ in specs}
    roots = {i for name in order for i in registry[name].input_names if i in ROOT_INPUTS and i != SOURCE}
    unique_assets = list(dict.fromkeys(assets))
    attached = root_inputs(store, unique_assets, roots)
    values: list[PlannedValue] = []
    for asset in unique_assets:
        keys: dict[str, str] = {SOURCE: asset, **{root: attached[(asset, root)].key for root in roots}}
        for name, spec, input_names in specs:
            inputs = tuple((i, keys[i]) for i in input_names)
            key = prefixes[name].key([k for _, k in inputs])
            keys[name] = key
            values.append(
                PlannedValue(key, asset, spec, models[name], inputs, keys[MEDIA_GATE] if name in gated else None)
            )
    stored = frozenset(store.stored_keys(v.key for v in values))
    missing = _needed(values, stored, wanted)
    return Plan(tuple(values), stored, missing, tuple(sorted(wanted)), attached)


def planning_order(registry: Registry, targets: Iterable[str] | None = None) -> tuple[tuple[str, ...], frozenset[str]]:
    """The features a plan of ``targets`` (default: every feature) has per asset, in the order it keys them, and
    those of them that wait for the media gate without reading it."""
    order = registry.closure(targets) if targets is not None else registry.order
    gated = _gated(registry, order)
    if gated:  # the gate and what it reads come first, so that gated values follow it in any order
        first = registry.closure([MEDIA_GATE])
        order = (*first, *(n for n in order if n not in first))
    return order, gated


def root_inputs(store: Store, assets: Sequence[str], roots: Iterable[str]) -> dict[tuple[str, str], RootInput]:
    """The root inputs other than ``source``, per (asset, root): one query per kind of root.

    Subtitles and title metadata are keyed by the files attached to each asset; ``mediafm`` by the
    promoted checkpoint, the same for every asset.
    """
    found: dict[tuple[str, str], RootInput] = {}
    for root in roots:
        if root in (SUBTITLES, TITLE):
            attached = store.attachments(assets, root)
            for a in assets:
                files = tuple(attached.get(a, []))
                key = attachment_set_key(root, [(f.language, f.sha256) for f in files], a)
                found[(a, root)] = RootInput(key, files)
        elif root == MEDIAFM:
            promoted = store.promoted(MEDIAFM)
            key = attachment_set_key(MEDIAFM, [(None, promoted.id)] if promoted else [])
            found.update(((a, root), RootInput(key, (promoted,) if promoted else ())) for a in assets)
    return found


def _gated(registry: Registry, order: Sequence[str]) -> frozenset[str]:
    """The features of ``order`` that wait for the media gate without reading it."""
    if MEDIA_GATE not in registry:
        return frozenset()
    related = {*registry.closure([MEDIA_GATE]), *registry.dependents(MEDIA_GATE)}
    return frozenset(n for n in order if n not in related)


def _needed(values: list[PlannedValue], stored: frozenset[str], wanted: set[str]) -> tuple[PlannedValue, ...]:
    """Missing values a missing target needs, walking back only through missing inputs."""
    by_key: dict[str, PlannedValue] = {v.key: v for v in values}
    needed: set[str] = set()
    stack: list[Any] = [v.key for v in values if v.feature in wanted and v.key not in stored]
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        needed.add(key)
        stack.extend(k for k in by_key[key].upstream_keys if k not in stored)
    return tuple(v for v in values if v.key in needed)
