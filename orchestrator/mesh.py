"""The mesh: a store plus a registry, and the operations users run on them (ingest, status, read)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediamesh.features.errors import (
    BackendUnavailableError,
    DefinitionError,
)
from mediamesh.features.registry import Registry
from mediamesh.features.spec import MEDIAFM
from mediamesh.features.values import TitleMetadata
from mediamesh.orchestrator.execution.dispatch import Dispatcher, dispatcher
from mediamesh.orchestrator.execution.engine import Progress, RunReport, execute
from mediamesh.orchestrator.execution.indexing import IndexReport, find_index, indexes_of, rebuild, scopes
from mediamesh.orchestrator.execution.ingest import IngestResult, LocalFile, Source, register, registered
from mediamesh.orchestrator.execution.planner import Plan, plan
from mediamesh.orchestrator.execution.plugins import configured_registry
from mediamesh.orchestrator.execution.states import FeatureState, PlannedState, feature_states
from mediamesh.orchestrator.interfaces import reads
from mediamesh.orchestrator.services.prefect_server import prefect_api_url
from mediamesh.store import Store, StoreSettings, ValueRecord, open_store
from mediamesh.store.codecs import payload_kind_of
from mediamesh.store.indexes import IndexedScope
from mediamesh.store.landing import LandingReader

if TYPE_CHECKING:
    from mediamesh.orchestrator.interfaces.search import SearchAnswer, SearchRequest

__all__ = ["Dispatched", "FeatureState", "IngestResult", "Mesh", "configured_registry"]


@dataclass(frozen=True)
class Dispatched:
    """What a trigger's one plan led to: the report when waited for, and the assets work was handed on for."""

    plan: Plan
    report: RunReport | None
    handed: list[str]


class Mesh:
    """Open with ``Mesh.open()`` (reads ``MEDIAMESH_*``), or from an open store and registry."""

    def __init__(self, store: Store, registry: Registry | None = None, *, home: Path | None = None) -> None:
        self.store = store
        self.registry = registry or configured_registry()
        self.home = home or StoreSettings().home_dir
        self.landing: LandingReader | None = None  # opened on the first landing object
        self._dispatcher: Dispatcher | None = None
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

    @property
    def dispatcher(self) -> Dispatcher:
        """Where this mesh's triggers run, as ``MEDIAMESH_EXECUTION`` says (``dispatch.dispatcher``)."""
        if self._dispatcher is None:
            self._dispatcher = dispatcher()
        return self._dispatcher

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.shutdown()
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
        """Register each file (with its sidecars) and have every target value it lacks computed.

        ``subtitles`` and ``title`` (merged over a ``movie.json`` sidecar) go with a single input. A bad
        input never stops the others.
        """
        if (subtitles or title) and len(paths) != 1:
            raise ValueError("subtitle files and title metadata can be given for one input at a time")
        sources = [LocalFile(Path(p), tuple(Path(s) for s in subtitles), title) for p in paths]
        return self.take(
            sources,
            trigger="ingest",
            targets=targets,
            progress=progress,
            on_registered=on_hashed,
            on_server_start=on_server_start,
        )

    def take(
        self,
        sources: Sequence[Source],
        *,
        trigger: str,
        wait: bool = True,
        targets: Iterable[str] | None = None,
        progress: Progress | None = None,
        on_registered: Callable[[str], None] | None = None,
        on_server_start: Callable[[], None] | None = None,
        landing: LandingReader | None = None,
    ) -> list[IngestResult]:
        """The one path of every trigger: register each source, plan once, hand the plan to the dispatcher.

        With ``wait`` each result says what was computed (or, on the pools, queued), and an outage is a line
        on every input. Without (a machine's trigger, which retries), the work is queued, each result says
        how many values its asset lacks (``missing``) and ``queued``, and an outage is raised.
        """
        results: list[IngestResult] = []
        try:
            for source in sources:
                results.append(register(self.store, source, landing=landing or self.landing))
                if on_registered is not None:
                    on_registered(results[-1].path)
            names = registered(results)
            if not names:
                return results
            done = self.dispatch(
                list(names),
                trigger=trigger,
                names=names,
                wait=wait,
                targets=targets,
                progress=progress,
                on_server_start=on_server_start,
            )
        except BackendUnavailableError as exc:
            if not wait:
                raise
            shown = [str(s.path) if isinstance(s, LocalFile) else s.name for s in sources]
            return _with_outage(results, shown, exc)
        for result in results:
            result.missing = sum(1 for v in done.plan.missing if v.asset == result.asset)
            result.queued = result.missing if result.asset in done.handed and done.report is None else 0
        report = done.report
        if report is None:
            return results
        seen: set[str] = set()
        for result in results:
            if result.asset is None:
                continue
            asset_report = report.assets[result.asset]
            if result.asset in seen:  # the same bytes twice in one call: the first entry did the work
                result.reused = len(done.plan.targets)
                continue
            seen.add(result.asset)
            result.computed, result.reused, result.failed, result.queued = (
                asset_report.computed,
                asset_report.reused,
                asset_report.failed,
                asset_report.queued,
            )
            result.errors.extend(e if result.path in e else f"{result.path}: {e}" for e in asset_report.errors)
        if report.outage is not None:
            return _with_outage(results, [], report.outage)
        return results

    def dispatch(
        self,
        assets: Sequence[str],
        *,
        trigger: str,
        names: Mapping[str, str] | None = None,
        wait: bool = True,
        targets: Iterable[str] | None = None,
        runs: Dispatcher | None = None,
        progress: Progress | None = None,
        on_server_start: Callable[[], None] | None = None,
    ) -> Dispatched:
        """Plan once for ``assets`` and hand the plan to the dispatcher (``runs``, else this mesh's); ``names``
        say what each asset came in as, for error lines.

        With ``wait`` the report says what was computed (or queued on the pools); without, the work is queued.
        """
        wanted = targets if targets is not None else self.default_targets()
        the_plan = plan(self.store, self.registry, list(dict.fromkeys(assets)), wanted)
        runs = runs or self.dispatcher
        names = names or {}
        if not wait:
            return Dispatched(the_plan, None, runs.submit(self, the_plan, trigger=trigger, names=names))
        report = runs.run(
            self, the_plan, trigger=trigger, names=names, progress=progress, on_server_start=on_server_start
        )
        handed = [a for a, r in report.assets.items() if r.computed or r.failed or r.queued]
        return Dispatched(the_plan, report, handed)

    def register(
        self, raw: str | Path, *, subtitles: Sequence[str | Path] = (), title: TitleMetadata | None = None
    ) -> IngestResult:
        """Register one file under its absolute path, with its sidecars, computing nothing; errors are kept."""
        return register(self.store, LocalFile(Path(raw), tuple(Path(s) for s in subtitles), title))

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
        """Every feature but those computed on demand, and those that need a trained MediaFM checkpoint while
        none is promoted."""
        names = [name for name in self.registry if not self.registry[name].on_demand]
        if self.store.promoted(MEDIAFM) is not None:
            return names
        return [name for name in names if MEDIAFM not in self.registry.roots_of(name)]

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
        """Each feature@version of the asset with its state, timing and worker (``execution/states.py``)."""
        asset = self.store.resolve_asset(asset_ref)
        the_plan = plan(self.store, self.registry, [asset])
        planned = [
            PlannedState(v.feature, v.spec.version, v.key, MEDIAFM in self.registry.roots_of(v.feature))
            for v in the_plan.values
        ]
        states = feature_states(
            planned,
            self.store.values_for(asset),
            self.store.live_claims(asset),
            self.store.attempts_for(asset),
            checkpoint_promoted=self.store.promoted(MEDIAFM) is not None,
            registered=self.registry,
        )
        return asset, states

    def read(self, asset_ref: str, feature: str, version: str | None = None) -> tuple[ValueRecord, Any]:
        """A stored value and its record, chosen as :meth:`find` chooses it, decoded as :meth:`load` decodes it."""
        return reads.read(self.store, self.registry, asset_ref, feature, version)

    def load(self, record: ValueRecord) -> Any:
        """The value as the registry's type for it, or generically without its code (``reads.load``)."""
        return reads.load(self.store, self.registry, record)

    def find(self, asset: str, feature: str, version: str | None = None) -> tuple[ValueRecord, bool]:
        """The record a reader of ``feature`` (or ``feature@version``) gets for asset id ``asset``, and whether
        the current definition made it (``reads.find`` says how it is chosen)."""
        return reads.find(self.store, self.registry, asset, feature, version)

    def search(
        self, request: SearchRequest | None = None, *, image: bytes | Path | None = None, **fields: Any
    ) -> SearchAnswer:
        """Search the indexes: ``mesh.search(kind="text", text="where is it", sources=["dialogue"])``, or a
        :class:`SearchRequest`; ``image`` is the picture of an image search (``interfaces/search.py``)."""
        from mediamesh.orchestrator.interfaces import search

        return search.search(self.store, self.registry, request or search.SearchRequest(**fields), image=image)

    def rebuild_index(self, name: str, *, version: str | None = None, drop: bool = True) -> IndexReport:
        """Derive one index's rows again from the stored values (``execution/indexing.py``)."""
        spec = find_index(indexes_of(self.registry), name)
        return rebuild(self.store, self.registry, spec, version=version, drop=drop)

    def index_scopes(self) -> list[IndexedScope]:
        """Per index and version: rows, values indexed and values stored."""
        return scopes(self.store, indexes_of(self.registry))


def _with_outage(results: list[IngestResult], paths: list[str], outage: BackendUnavailableError) -> list[IngestResult]:
    """Every input, each carrying the outage's line (the same text, so it is printed once); none of them is ok."""
    done = {r.path for r in results}
    results = [*results, *(IngestResult(path=p) for p in paths if p not in done)]
    for result in results:
        result.errors.append(str(outage))
    return results
