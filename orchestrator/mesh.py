"""The mesh: a store plus a registry, and the operations users run on them (ingest, status, read)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mediamesh.features.errors import (
    BackendUnavailableError,
    DefinitionError,
    InputFileError,
    MediameshError,
    UnknownFeatureError,
    did_you_mean,
)
from mediamesh.features.registry import Registry
from mediamesh.features.spec import MEDIAFM, SUBTITLES
from mediamesh.features.values import TitleMetadata
from mediamesh.orchestrator.execution.engine import Progress, RunReport, execute
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.execution.plugins import configured_registry
from mediamesh.orchestrator.execution.sidecars import find_subtitle_sidecars, read_title_sidecar, subtitle_language
from mediamesh.orchestrator.services.prefect_server import prefect_api_url
from mediamesh.store import Store, StoreSettings, ValueNotFoundError, ValueRecord, open_store
from mediamesh.store.codecs import payload_kind_of

__all__ = ["FeatureState", "IngestResult", "Mesh", "configured_registry"]

_NOT_IN_REGISTRY = "not in the registry: read without its code"
_NO_CHECKPOINT = "no MediaFM checkpoint is promoted: mediamesh train mediafm, then mediamesh promote mediafm ID"


@dataclass
class IngestResult:
    """What one ingested input led to; ``ok`` only when nothing failed."""

    path: str
    asset: str | None = None
    computed: int = 0
    reused: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.asset is not None and not self.errors and self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "asset": self.asset,
            "computed": self.computed,
            "reused": self.reused,
            "failed": self.failed,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class FeatureState:
    """One feature of one asset: ``stored``, ``running``, ``failed``, ``waiting`` (for a checkpoint) or ``missing``."""

    feature: str
    version: str
    state: str
    key: str
    duration_s: float | None = None
    worker: str | None = None
    at: datetime | None = None
    detail: str = ""


class Mesh:
    """Open with ``Mesh.open()`` (reads ``MEDIAMESH_*``), or from an open store and registry."""

    def __init__(self, store: Store, registry: Registry | None = None, *, home: Path | None = None) -> None:
        self.store = store
        self.registry = registry or configured_registry()
        self.home = home or StoreSettings().home_dir
        for spec in self.registry.values():
            try:
                payload_kind_of(spec.output)
            except TypeError:
                raise DefinitionError(
                    f"feature {spec.ref} returns {getattr(spec.output, '__name__', spec.output)}, which mediamesh "
                    "cannot store; return a FileValue, a JsonValue or a NumPy array"
                ) from None

    @classmethod
    def open(cls, registry: Registry | None = None, settings: StoreSettings | None = None) -> Mesh:
        settings = settings or StoreSettings()
        return cls(open_store(settings), registry, home=settings.home_dir)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        targets: Iterable[str] | None = None,
        progress: Progress | None = None,
        on_hashed: Callable[[str], None] | None = None,
        on_server_start: Callable[[], None] | None = None,
        subtitles: Sequence[str | Path] = (),
        title: TitleMetadata | None = None,
    ) -> list[IngestResult]:
        """Register each file (with its sidecars) and compute every target value it lacks.

        ``subtitles`` and ``title`` (merged over a ``movie.json`` sidecar) go with a single input. A bad
        input never stops the others.
        """
        if (subtitles or title) and len(paths) != 1:
            raise ValueError("subtitle files and title metadata can be given for one input at a time")
        results: list[IngestResult] = []
        names: dict[str, str] = {}
        try:
            for raw in paths:
                result = self.register(raw, subtitles=subtitles, title=title)
                results.append(result)
                if result.asset is not None:
                    names.setdefault(result.asset, str(raw))
                if on_hashed is not None:
                    on_hashed(str(raw))
            assets = list(dict.fromkeys(r.asset for r in results if r.asset is not None))
            if not assets:
                return results
            wanted = targets if targets is not None else self.default_targets()
            the_plan = plan(self.store, self.registry, assets, wanted)
            report = self.run(
                the_plan, trigger="ingest", names=names, progress=progress, on_server_start=on_server_start
            )
        except BackendUnavailableError as exc:
            return _with_outage(results, [str(raw) for raw in paths], exc)
        seen: set[str] = set()
        for result in results:
            if result.asset is None:
                continue
            asset_report = report.assets[result.asset]
            if result.asset in seen:  # the same bytes twice in one call: the first entry did the work
                result.reused = len(the_plan.targets)
                continue
            seen.add(result.asset)
            result.computed, result.reused, result.failed = (
                asset_report.computed,
                asset_report.reused,
                asset_report.failed,
            )
            result.errors.extend(e if result.path in e else f"{result.path}: {e}" for e in asset_report.errors)
        if report.outage is not None:
            return _with_outage(results, [], report.outage)
        return results

    def register(
        self, raw: str | Path, *, subtitles: Sequence[str | Path] = (), title: TitleMetadata | None = None
    ) -> IngestResult:
        """Register one file under its absolute path, with its sidecars, computing nothing; errors are kept."""
        result = IngestResult(path=str(raw))
        try:
            path = _readable_file(Path(raw))
            asset, _ = self.store.register_asset(path, name=str(path.resolve()))
            result.asset = asset.id
        except BackendUnavailableError:
            raise
        except (MediameshError, OSError) as exc:
            result.errors.append(f"{raw}: {_message(exc)}")
        else:
            self._attach_subtitles(result, path, [Path(s) for s in subtitles])
            self._attach_title(result, path, title)
        return result

    def backfill(
        self,
        feature: str,
        *,
        assets: Sequence[str] | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> RunReport:
        """Compute ``feature`` (and what it needs) for every asset, or for the given asset refs."""
        spec = self.registry.resolve(feature)
        ids = [self.store.resolve_asset(a) for a in assets] if assets else [a.id for a in self.store.assets()]
        the_plan = plan(self.store, self.registry, ids, [spec.name])
        return self.run(the_plan, trigger=f"backfill-{spec.name}", progress=progress, on_server_start=on_server_start)

    def default_targets(self) -> list[str]:
        """Every feature, except those that need a trained MediaFM checkpoint while none is promoted."""
        if self.store.promoted(MEDIAFM) is not None:
            return list(self.registry)
        return [name for name in self.registry if MEDIAFM not in self.registry.roots_of(name)]

    def _attach_subtitles(self, result: IngestResult, video: Path, explicit: list[Path]) -> None:
        asset_id = result.asset
        if asset_id is None:  # pragma: no cover - only called after registration
            return
        files = [*find_subtitle_sidecars(video), *((p, subtitle_language(p)) for p in explicit)]
        for path, language in files:
            try:
                self.store.attach(asset_id, SUBTITLES, _readable_file(path), name=path.name, language=language)
            except BackendUnavailableError:
                raise
            except (MediameshError, OSError) as exc:
                result.errors.append(f"{path}: {_message(exc)}")

    def _attach_title(self, result: IngestResult, video: Path, given: TitleMetadata | None) -> None:
        if result.asset is None:  # pragma: no cover - only called after registration
            return
        try:
            sidecar = read_title_sidecar(video)
        except MediameshError as exc:
            result.errors.append(f"{video}: {exc}")
            sidecar = None
        if sidecar is None and given is None:
            return
        merged = sidecar or TitleMetadata()
        if given is not None:
            merged = TitleMetadata(
                title=given.title or merged.title,
                synopsis=given.synopsis or merged.synopsis,
                tags=given.tags or merged.tags,
            )
        name = video.with_suffix(".json").name if sidecar is not None and given is None else "ingest options"
        self.store.set_title_metadata(result.asset, merged, name=name)

    def run(
        self,
        the_plan: Plan,
        *,
        trigger: str,
        names: dict[str, str] | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> RunReport:
        """Execute a plan; the Prefect API is only contacted (or started) when something is missing."""
        api_url = prefect_api_url(self.home, on_start=on_server_start) if the_plan.missing else None
        return execute(
            self.store,
            self.registry,
            the_plan,
            trigger=trigger,
            api_url=api_url,
            names=names,
            progress=progress,
        )

    def status(self, asset_ref: str) -> tuple[str, list[FeatureState]]:
        """Each feature@version of the asset with its state, timing and worker."""
        asset = self.store.resolve_asset(asset_ref)
        the_plan = plan(self.store, self.registry, [asset])
        running = {c["value_key"]: c for c in self.store.live_claims(asset)}
        failures: dict[str, Any] = {}
        for attempt in self.store.attempts_for(asset):
            failures.setdefault(attempt.value_key, attempt)
        states: list[FeatureState] = []
        current: set[str] = set()
        for planned in the_plan.values:
            current.add(planned.key)
            record = self.store.value(planned.key) if planned.key in the_plan.stored else None
            if record is not None:
                states.append(_stored_state(record))
            elif planned.key in running:
                claim = running[planned.key]
                states.append(
                    FeatureState(
                        planned.feature,
                        planned.spec.version,
                        "running",
                        planned.key,
                        None,
                        claim["worker"],
                        claim["claimed_at"],
                    )
                )
            elif planned.key in failures:
                attempt = failures[planned.key]
                states.append(
                    FeatureState(
                        planned.feature,
                        planned.spec.version,
                        "failed",
                        planned.key,
                        (attempt.finished_at - attempt.started_at).total_seconds(),
                        attempt.worker,
                        attempt.finished_at,
                        f"{attempt.error_type}: {attempt.message}",
                    )
                )
            elif MEDIAFM in self.registry.roots_of(planned.feature) and self.store.promoted(MEDIAFM) is None:
                states.append(
                    FeatureState(planned.feature, planned.spec.version, "waiting", planned.key, detail=_NO_CHECKPOINT)
                )
            else:
                hint = f"run `mediamesh backfill {planned.feature}`"
                states.append(FeatureState(planned.feature, planned.spec.version, "missing", planned.key, detail=hint))
        for record in self.store.values_for(asset):
            if record.key not in current:
                other = "other version or params" if record.feature in self.registry else _NOT_IN_REGISTRY
                states.append(_stored_state(record, detail=other))
        return asset, states

    def read(self, asset_ref: str, feature: str, version: str | None = None) -> tuple[ValueRecord, Any]:
        """A stored value and its record, chosen as :meth:`find` chooses it, decoded as :meth:`load` decodes it."""
        record, _current = self.find(self.store.resolve_asset(asset_ref), feature, version)
        return record, self.load(record)

    def load(self, record: ValueRecord) -> Any:
        """The value as the registry's type for it; without the feature's code (or where the registry's type is
        stored another way) generically, as ``store.codecs.decode`` reads it: JSON, a NumPy array or a path."""
        spec = self.registry.get(record.feature)
        output = spec.output if spec is not None and payload_kind_of(spec.output) == record.payload_kind else None
        return self.store.load(record, output)

    def find(self, asset: str, feature: str, version: str | None = None) -> tuple[ValueRecord, bool]:
        """The record a reader of ``feature`` (or ``feature@version``) gets for asset id ``asset``, and whether
        the current definition made it.

        A pinned ``version`` gets that version. Unpinned readers get the promoted version, if the feature
        was ever promoted, else the registry's current one, else the newest stored. Within a version the
        registry's current definition wins, else the newest value (other params) is taken. A feature the
        registry lacks is looked up in the store's catalogue: its values are read without its code.
        """
        feature, version = _split_ref(feature, version)
        if feature not in self.registry:
            return self._find_stored(asset, feature, version), False
        spec = self.registry.resolve(feature)
        promoted = None if version is not None else self.store.promoted_version(spec.name)
        wanted = version if version is not None else promoted
        current_key = plan(self.store, self.registry, [asset], [spec.name]).key_of(asset, spec.name)
        record = self.store.value(current_key) if wanted is None or wanted == spec.version else None
        if record is None:
            candidates = self.store.values_for(asset, spec.name, wanted)
            record = candidates[0] if candidates else None
        if record is None:
            which = f"{spec.name}@{wanted}" if wanted else spec.name
            because = " (the promoted version: backfill it, or pin another version)" if promoted else ""
            raise ValueNotFoundError(f"asset {asset[:12]} has no stored {which}{because}")
        return record, record.key == current_key

    def _find_stored(self, asset: str, feature: str, version: str | None) -> ValueRecord:
        """As :meth:`find`, for a feature only the catalogue knows: the promoted version, else the newest stored."""
        promoted = None if version is not None else self.store.promoted_version(feature)
        wanted = version if version is not None else promoted
        candidates = self.store.values_for(asset, feature, wanted)
        if candidates:
            return candidates[0]
        if not self.store.catalogue(feature):
            known = [*self.registry, *self.store.stored_feature_names()]
            raise UnknownFeatureError(f"no feature named {feature!r}.{did_you_mean(feature, known)}")
        which = f"{feature}@{wanted}" if wanted else feature
        raise ValueNotFoundError(f"asset {asset[:12]} has no stored {which}")


def _with_outage(results: list[IngestResult], paths: list[str], outage: BackendUnavailableError) -> list[IngestResult]:
    """Every input, each carrying the outage's line (the same text, so it is printed once); none of them is ok."""
    done = {r.path for r in results}
    results = [*results, *(IngestResult(path=p) for p in paths if p not in done)]
    for result in results:
        result.errors.append(str(outage))
    return results


def _readable_file(path: Path) -> Path:
    if not path.exists():
        raise InputFileError("no such file")
    if not path.is_file():
        raise InputFileError("not a regular file")
    if not os.access(path, os.R_OK):
        raise InputFileError("permission denied")
    return path


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _split_ref(feature: str, version: str | None) -> tuple[str, str | None]:
    """``name@version`` as (name, version); a version given both ways must be the same one."""
    name, at, pinned = feature.partition("@")
    if not at:
        return feature, version
    if version is not None and version != pinned:
        raise DefinitionError(f"{feature!r} names version {pinned!r}, but version {version!r} was asked for")
    return name, pinned


def _stored_state(record: ValueRecord, detail: str = "") -> FeatureState:
    return FeatureState(
        record.feature,
        record.version,
        "stored",
        record.key,
        record.duration_s,
        record.worker,
        record.created_at,
        detail,
    )
