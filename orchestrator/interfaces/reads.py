"""One read path for every interface: find the record a reader gets, load it, slice it to shots, render it.

The CLI's ``read``, the API's value routes and ``Mesh.read`` all go through these functions, so a value
looks the same wherever it is read:

    ShotTable       [{index, start_frame, end_frame, start_time, end_time, transition, ...}, ...]  (end exclusive)
    TimedText       {"cues": [{index, start, end, text}], "per_shot": [[cue index, ...]], "origin", "language"}
    DedupMap        {"representative": [shot index, ...], "method"}
    other tables    their ``to_json()``; a JSON document read without its code, as it is stored
    arrays          {"shape", "dtype", "meta", "data"}; NaN and infinities (which JSON lacks) become null
    media files     their metadata (the bytes themselves go to a file, never into JSON)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mediamesh.features.errors import DefinitionError, UnknownFeatureError, did_you_mean
from mediamesh.features.registry import Registry
from mediamesh.features.values import ArrayValue, DedupMap, FileValue, JsonValue, ShotEmbeddings, ShotTable, TimedText
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.store import Store, ValueNotFoundError, ValueRecord
from mediamesh.store.codecs import payload_kind_of

__all__ = [
    "ReadRequestError",
    "ShotSlice",
    "array_of",
    "check_bounds",
    "find",
    "find_stored",
    "load",
    "read",
    "render",
    "shot_slice",
    "split_ref",
]


class ReadRequestError(DefinitionError):
    """A read asks for what the value does not have: a shot slice of a whole-asset value, JSON of raw bytes."""


@dataclass(frozen=True)
class ShotSlice:
    """The shots ``[start, stop)`` of ``total`` that a per-shot value was sliced to."""

    start: int
    stop: int
    total: int


def read(
    store: Store, registry: Registry, asset_ref: str, feature: str, version: str | None = None
) -> tuple[ValueRecord, Any]:
    """A stored value and its record, chosen as :func:`find` chooses it, decoded as :func:`load` decodes it."""
    record, _current = find(store, registry, store.resolve_asset(asset_ref), feature, version)
    return record, load(store, registry, record)


def load(store: Store, registry: Registry, record: ValueRecord) -> Any:
    """The value as the registry's type for it; without the feature's code (or where the registry's type is
    stored another way) generically, as ``store.codecs.decode`` reads it: JSON, a NumPy array or a path."""
    spec = registry.get(record.feature)
    output = spec.output if spec is not None and payload_kind_of(spec.output) == record.payload_kind else None
    return store.load(record, output)


def find(
    store: Store, registry: Registry, asset: str, feature: str, version: str | None = None
) -> tuple[ValueRecord, bool]:
    """The record a reader of ``feature`` (or ``feature@version``) gets for asset id ``asset``, and whether
    the current definition made it.

    A pinned ``version`` gets that version. Unpinned readers get the promoted version, if the feature
    was ever promoted, else the registry's current one, else the newest stored. Within a version the
    registry's current definition wins, else the newest value (other params) is taken. A feature the
    registry lacks is looked up in the store's catalogue: its values are read without its code.
    """
    feature, version = split_ref(feature, version)
    if feature not in registry:
        return find_stored(store, registry, asset, feature, version), False
    spec = registry.resolve(feature)
    promoted = None if version is not None else store.promoted_version(spec.name)
    wanted = version if version is not None else promoted
    current_key = plan(store, registry, [asset], [spec.name]).key_of(asset, spec.name)
    record = store.value(current_key) if wanted is None or wanted == spec.version else None
    if record is None:
        candidates = store.values_for(asset, spec.name, wanted)
        record = candidates[0] if candidates else None
    if record is None:
        which = f"{spec.name}@{wanted}" if wanted else spec.name
        because = " (the promoted version: backfill it, or pin another version)" if promoted else ""
        raise ValueNotFoundError(f"asset {asset[:12]} has no stored {which}{because}")
    return record, record.key == current_key


def find_stored(store: Store, registry: Registry, asset: str, feature: str, version: str | None) -> ValueRecord:
    """As :func:`find`, for a feature only the catalogue knows: the promoted version, else the newest stored."""
    promoted = None if version is not None else store.promoted_version(feature)
    wanted = version if version is not None else promoted
    candidates = store.values_for(asset, feature, wanted)
    if candidates:
        return candidates[0]
    if not store.catalogue(feature):
        known = [*registry, *store.stored_feature_names()]
        raise UnknownFeatureError(f"no feature named {feature!r}.{did_you_mean(feature, known)}")
    which = f"{feature}@{wanted}" if wanted else feature
    raise ValueNotFoundError(f"asset {asset[:12]} has no stored {which}")


def split_ref(feature: str, version: str | None) -> tuple[str, str | None]:
    """``name@version`` as (name, version); a version given both ways must be the same one."""
    name, at, pinned = feature.partition("@")
    if not at:
        return feature, version
    if version is not None and version != pinned:
        raise DefinitionError(f"{feature!r} names version {pinned!r}, but version {version!r} was asked for")
    return name, pinned


def check_bounds(start: int | None, stop: int | None, t0: float | None, t1: float | None) -> None:
    """Refuse bounds that contradict each other, before anything is looked up."""
    if (start is not None or stop is not None) and (t0 is not None or t1 is not None):
        raise ReadRequestError("slice by shot indices (start, stop) or by time (t0, t1), not both")
    if start is not None and stop is not None and stop < start:
        raise ReadRequestError(f"stop ({stop}) is before start ({start})")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ReadRequestError(f"t1 ({t1}) must be after t0 ({t0})")


def shot_slice(
    store: Store,
    registry: Registry,
    record: ValueRecord,
    value: Any,
    *,
    start: int | None = None,
    stop: int | None = None,
    t0: float | None = None,
    t1: float | None = None,
) -> ShotSlice | None:
    """The shots a per-shot value is read for: by index ``[start, stop)``, by time (the shots overlapping
    ``[t0, t1)``, from the shot table the value was computed from), else all of them. None for a value that
    is not per shot, which cannot be sliced."""
    check_bounds(start, stop, t0, t1)
    by_shot, by_time = start is not None or stop is not None, t0 is not None or t1 is not None
    if not isinstance(value, ShotTable | TimedText | DedupMap | ShotEmbeddings):
        if by_shot or by_time:
            kind = "a media file" if record.payload_kind == "file" else "not a per-shot value"
            raise ReadRequestError(f"{record.ref} is {kind}; it cannot be sliced by shot or time")
        return None
    total = _shot_count(value)
    if by_time:
        table = value if isinstance(value, ShotTable) else _shot_table_of(store, registry, record)
        lo, hi = _overlapping(table, t0, t1)
    else:
        lo, hi = min(start or 0, total), min(total if stop is None else stop, total)
    return ShotSlice(start=lo, stop=max(lo, hi), total=total)


def array_of(value: Any, shots: ShotSlice | None = None) -> np.ndarray[Any, Any]:
    """The array an array value holds, sliced to ``shots``."""
    array: np.ndarray[Any, Any] = value.data if isinstance(value, ArrayValue) else value
    return array[shots.start : shots.stop] if shots is not None else array


def render(record: ValueRecord, value: Any, shots: ShotSlice | None = None) -> Any:
    """The value as JSON-able data (the forms the module docstring lists), sliced to ``shots``."""
    lo, hi = (shots.start, shots.stop) if shots is not None else (0, None)
    if isinstance(value, FileValue):
        return value.to_meta()
    if isinstance(value, Path):  # a media file read without its feature's code: its stored metadata
        return dict(record.meta)
    if isinstance(value, ArrayValue | np.ndarray):
        array = array_of(value, shots)
        if array.dtype.kind not in "biuf":
            raise ReadRequestError(f"{record.ref} holds {array.dtype} values, which JSON cannot carry; read it as npy")
        meta = value.meta if isinstance(value, ArrayValue) else {}
        return {"shape": list(array.shape), "dtype": str(array.dtype), "meta": meta, "data": _json_rows(array)}
    if isinstance(value, ShotTable):
        return value.records()[lo:hi]
    if isinstance(value, TimedText):
        per_shot = [list(p) for p in value.per_shot[lo:hi]]
        wanted = sorted({i for p in per_shot for i in p}) if shots is not None else range(len(value.cues))
        cues = [
            {"index": i, "start": value.cues[i].start, "end": value.cues[i].end, "text": value.cues[i].text}
            for i in wanted
        ]
        return {"cues": cues, "per_shot": per_shot, "origin": value.origin, "language": value.language}
    if isinstance(value, DedupMap):
        return {"representative": list(value.representative[lo:hi]), "method": value.method}
    if isinstance(value, JsonValue):
        return value.to_json()
    if isinstance(value, dict | list):  # a JSON document read without its feature's code, as it is stored
        return value
    raise ReadRequestError(f"{record.ref} ({type(value).__name__}) has no JSON form; write it to a file")


def _shot_count(value: Any) -> int:
    if isinstance(value, ShotTable):
        return len(value.shots)
    if isinstance(value, TimedText):
        return len(value.per_shot)
    if isinstance(value, DedupMap):
        return len(value.representative)
    return int(value.data.shape[0]) if value.data.ndim else 0


def _shot_table_of(store: Store, registry: Registry, record: ValueRecord) -> ShotTable:
    """The shot table a per-shot value was computed from, found by walking its lineage."""
    seen: set[str] = set()
    frontier = [record.key]
    while frontier:
        key = frontier.pop(0)
        for _, input_key in store.lineage(key):
            if input_key in seen:
                continue
            seen.add(input_key)
            upstream = store.value(input_key)
            if upstream is None:  # a root input: the asset, its subtitles, its title
                continue
            output = registry[upstream.feature].output if upstream.feature in registry else None
            if isinstance(output, type) and issubclass(output, ShotTable):
                table: ShotTable = store.load(upstream, output)
                return table
            frontier.append(input_key)
    raise ReadRequestError(f"{record.ref} was not computed from a shot table; slice it by shot indices")


def _overlapping(table: ShotTable, t0: float | None, t1: float | None) -> tuple[int, int]:
    """The shots overlapping [t0, t1), as an index range; shots are contiguous in time, so the range is too."""
    low, high = t0 if t0 is not None else 0.0, t1 if t1 is not None else float("inf")
    hits = [i for i, s in enumerate(table.shots) if s.end_time > low and s.start_time < high]
    if not hits:
        before = sum(1 for s in table.shots if s.end_time <= low)
        return before, before
    return hits[0], hits[-1] + 1


def _json_rows(array: np.ndarray[Any, Any]) -> Any:
    """The array as nested lists; NaN and infinities (which JSON lacks) become null."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        rows = array.astype(object)
        rows[~np.isfinite(array)] = None
        return rows.tolist()
    return array.tolist()
