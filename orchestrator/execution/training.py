"""Training and evaluating MediaFM on the catalogue in the store; checkpoints are stored as artefacts."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mediamesh.features.errors import NotFoundError
from mediamesh.features.mediafm import (
    Checkpoint,
    ProbeMetrics,
    RetrievalMetrics,
    StepReport,
    TitleSequence,
    TrainOptions,
    config_preset,
    embed_title,
    labels_from_rows,
    linear_probe,
    masked_shot_retrieval,
    neighbour_baseline,
    train,
)
from mediamesh.features.models import device
from mediamesh.features.spec import MEDIAFM
from mediamesh.features.values import ShotEmbeddings, ShotTable, TitleEmbedding
from mediamesh.orchestrator.execution.planner import plan
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import ArtefactRecord

__all__ = ["Catalogue", "CatalogueError", "evaluate_probe", "evaluate_retrieval", "gather_catalogue", "train_mediafm"]

#: The unimodal parts of a fused vector, in the order fused concatenates them.
MODALITIES = ("video_embedding", "audio_embedding", "text_embedding")


class CatalogueError(NotFoundError):
    """The store does not hold what training or evaluation needs (no fused values, too few titles)."""


@dataclass
class Catalogue:
    """Titles with stored fused values (and title embeddings), and the value keys they came from."""

    titles: list[TitleSequence] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """The training data's identity: a hash of the value keys read."""
        return hashlib.sha256("\n".join(sorted(self.keys)).encode()).hexdigest()


def gather_catalogue(mesh: Mesh, assets: Sequence[str] | None = None) -> Catalogue:
    """Every asset's fused shot vectors and title embedding under the current registry."""
    ids = list(assets) if assets is not None else [a.id for a in mesh.store.assets()]
    catalogue = Catalogue()
    the_plan = plan(mesh.store, mesh.registry, ids, ["fused", "title_embedding"])
    for asset in ids:
        fused_key = the_plan.key_of(asset, "fused")
        title_key = the_plan.key_of(asset, "title_embedding")
        if fused_key not in the_plan.stored:
            catalogue.missing.append(asset)
            continue
        fused = _load(mesh, fused_key, ShotEmbeddings)
        title = _load(mesh, title_key, TitleEmbedding) if title_key in the_plan.stored else None
        present = title is not None and bool(title.meta.get("present", True))
        catalogue.titles.append(
            TitleSequence(asset, np.asarray(fused.data, np.float32), title.data if present and title else None)
        )
        catalogue.keys.extend(k for k in (fused_key, title_key) if k in the_plan.stored)
    return catalogue


def split(titles: Sequence[TitleSequence], val_fraction: float) -> tuple[list[TitleSequence], list[TitleSequence]]:
    """Hold out about ``val_fraction`` of the titles (at least one when there are two or more), chosen by a
    hash of their asset ids, so the same catalogue always splits the same way."""
    ordered = sorted(titles, key=lambda t: hashlib.sha256(t.asset.encode()).hexdigest())
    held = 0 if len(ordered) < 2 else max(1, round(val_fraction * len(ordered)))
    return ordered[held:], ordered[:held]


def train_mediafm(
    mesh: Mesh,
    options: TrainOptions | None = None,
    *,
    config: str = "small",
    val_fraction: float = 0.2,
    on_step: Callable[[StepReport], None] | None = None,
) -> tuple[ArtefactRecord, dict[str, Any]]:
    """Train MediaFM (the ``config`` preset) as ``options`` say on the stored catalogue, holding out about
    ``val_fraction`` of the titles, and store the checkpoint as a ``mediafm`` artefact."""
    options = options or TrainOptions()
    catalogue = gather_catalogue(mesh)
    if not catalogue.titles:
        raise CatalogueError("no title has a stored fused value yet: ingest some videos first")
    train_titles, val_titles = split(catalogue.titles, val_fraction)
    first = catalogue.titles[0]
    title_dim = next((t.title.shape[0] for t in catalogue.titles if t.title is not None), _text_dim())
    model_config = config_preset(config, fused_dim=first.fused.shape[1], title_dim=title_dim)
    result = train(train_titles, val_titles, model_config, options, device=device(), on_step=on_step)
    meta = {
        "config": config,
        "model": model_config.to_dict(),
        "optimizer": options.optimizer,
        "steps": result.checkpoint.step,
        "seed": options.seed,
        "data_fingerprint": catalogue.fingerprint,
        "train_assets": [t.asset for t in train_titles],
        "val_assets": [t.asset for t in val_titles],
        "metrics": result.metrics,
    }
    record = mesh.store.put_artefact(MEDIAFM, result.checkpoint.to_bytes(), meta)
    return record, meta


def load_checkpoint(mesh: Mesh, ref: str | None) -> tuple[ArtefactRecord, Checkpoint]:
    """A stored checkpoint by id prefix, or the promoted one."""
    record = mesh.store.artefact(ref) if ref else mesh.store.promoted(MEDIAFM)
    if record is None:
        raise CatalogueError("no MediaFM checkpoint is promoted; name one with --checkpoint")
    return record, Checkpoint.from_bytes(mesh.store.blobs.get_bytes(record.blob_key))


def evaluate_retrieval(mesh: Mesh, ref: str | None = None) -> dict[str, RetrievalMetrics]:
    """Masked-shot retrieval on the checkpoint's held-out titles: the model against the neighbour average."""
    record, checkpoint = load_checkpoint(mesh, ref)
    held_out = list(record.meta.get("val_assets") or [])
    catalogue = gather_catalogue(mesh, held_out or None)
    if not catalogue.titles:
        raise CatalogueError(f"checkpoint {record.id[:12]} has no held-out titles with stored fused values")
    model = checkpoint.model(device())
    return {
        "mediafm": masked_shot_retrieval(model, catalogue.titles, device=device()),
        "neighbour average": neighbour_baseline(catalogue.titles),
    }


def evaluate_probe(mesh: Mesh, labels: Path, ref: str | None = None, seed: int = 0) -> dict[str, ProbeMetrics]:
    """A linear probe per representation on frozen embeddings: each modality, fused, and contextual.

    ``labels`` is a CSV of ``asset, shot index or time range, label`` (asset ids, prefixes or ingested
    files). Titles are split for training and testing, by asset when at least two are labelled.
    """
    with open(labels, newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh) if row and not row[0].startswith("#")]
    if rows and rows[0][0].strip().lower() == "asset":
        rows = rows[1:]
    resolved = [(mesh.store.resolve_local_asset(r[0].strip()), *r[1:]) for r in rows]
    assets = list(dict.fromkeys(r[0] for r in resolved))
    shot_plan = plan(mesh.store, mesh.registry, assets, ["shots", "fused"])
    times = {a: [(s.start_time, s.end_time) for s in _shots(mesh, shot_plan.key_of(a, "shots")).shots] for a in assets}
    per_shot = labels_from_rows(resolved, times)
    representations = _representations(mesh, assets, ref)
    test_assets = set(_test_split(assets, seed))
    results: dict[str, ProbeMetrics] = {}
    for name, by_asset in representations.items():
        train_x: list[np.ndarray[Any, Any]] = []
        test_x: list[np.ndarray[Any, Any]] = []
        train_y: list[str] = []
        test_y: list[str] = []
        for asset in assets:
            for shot, label in enumerate(per_shot.get(asset, [])):
                if label is None:
                    continue
                into_test = asset in test_assets if len(assets) > 1 else shot % 2 == 1
                (test_x if into_test else train_x).append(by_asset[asset][shot])
                (test_y if into_test else train_y).append(label)
        if not train_x or not test_x:
            raise CatalogueError("the labels leave no shot to train or to test the probe on; label more")
        try:
            results[name] = linear_probe(np.stack(train_x), np.array(train_y), np.stack(test_x), np.array(test_y))
        except ValueError as exc:
            raise CatalogueError(f"linear probe on {name}: {exc}") from exc
    return results


def _representations(mesh: Mesh, assets: list[str], ref: str | None) -> dict[str, dict[str, np.ndarray[Any, Any]]]:
    the_plan = plan(mesh.store, mesh.registry, assets, [*MODALITIES, "fused", "title_embedding"])
    found: dict[str, dict[str, np.ndarray[Any, Any]]] = {name: {} for name in (*MODALITIES, "fused")}
    for asset in assets:
        for name in found:
            key = the_plan.key_of(asset, name)
            if key not in the_plan.stored:
                raise CatalogueError(f"asset {asset[:12]} has no stored {name}: ingest it first")
            found[name][asset] = np.asarray(_load(mesh, key, ShotEmbeddings).data)
    try:
        _, checkpoint = load_checkpoint(mesh, ref)
    except CatalogueError:
        return found
    model = checkpoint.model(device())
    found["contextual"] = {}
    for asset in assets:
        title_key = the_plan.key_of(asset, "title_embedding")
        title = _load(mesh, title_key, TitleEmbedding) if title_key in the_plan.stored else None
        vector = title.data if title is not None and title.meta.get("present", True) else None
        found["contextual"][asset] = embed_title(model, found["fused"][asset], vector, device=device())
    return found


def _test_split(assets: list[str], seed: int) -> list[str]:
    ordered = sorted(assets, key=lambda a: hashlib.sha256(f"{seed}:{a}".encode()).hexdigest())
    return ordered[: max(1, round(0.3 * len(ordered)))] if len(ordered) > 1 else []


def _load(mesh: Mesh, key: str, output_type: Any) -> Any:
    record = mesh.store.value(key)
    if record is None:  # pragma: no cover - keys come from the plan's stored set
        raise CatalogueError(f"value {key[:12]} vanished")
    return mesh.store.load(record, output_type)


def _shots(mesh: Mesh, key: str) -> ShotTable:
    table: ShotTable = _load(mesh, key, ShotTable)
    return table


def _text_dim() -> int:
    """The text encoder's width, for a [GLOBAL] projection even when no title in the catalogue has metadata."""
    from mediamesh.features.models import load_text_model, resolve_model, text_dimension

    return text_dimension(load_text_model(resolve_model("text")))
