"""The feature catalogue: what each stored feature version is, and values decoded without their code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from mediamesh.features.values import EncodedMedia, ShotTable
from mediamesh.store import NewValue, Store
from mediamesh.store.gateway import FeatureVersion

MODULE = "thirdparty.features"


def _new(asset: str, n: int, feature: str, version: str = "1", params: dict[str, float] | None = None) -> NewValue:
    now = datetime.now(UTC)
    return NewValue(
        key=f"{n:064x}",
        asset_id=asset,
        feature=feature,
        version=version,
        params=params or {},
        model_fingerprint="weights-1" if feature == "emb" else None,
        code_fingerprint=f"{version}" * 64,
        inputs=(("source", asset),),
        started_at=now,
        finished_at=now,
        worker="test:1",
        device="cpu",
    )


def test_catalogue_lists_every_computed_version_with_what_decodes_it(local_store: Store, tmp_path: Path) -> None:
    store = local_store
    clip, other = tmp_path / "a.mp4", tmp_path / "b.mp4"
    clip.write_bytes(b"first clip")
    other.write_bytes(b"second clip")
    a, _ = store.register_asset(clip, name="a")
    b, _ = store.register_asset(other, name="b")
    # A run before 0007 recorded no module; a later run of the same code records where it came from.
    store.record_features([("shots", "1", "1" * 64, "cpu")])
    store.record_features(
        [
            FeatureVersion("shots", "1", "1" * 64, "cpu", MODULE, f"{ShotTable.__module__}.ShotTable", "json"),
            FeatureVersion("emb", "2", "2" * 64, "gpu", MODULE, "numpy.ndarray", "array"),
        ]
    )
    store.record_features([("shots", "1", "1" * 64, "cpu")])  # the same again changes nothing
    store.put_value(_new(a.id, 1, "shots", params={"threshold": 27.0}), ShotTable.from_frames(24.0, [(0, 10)]))
    store.put_value(_new(b.id, 2, "shots", params={"threshold": 27.0}), ShotTable.from_frames(24.0, [(0, 5)]))
    store.put_value(_new(a.id, 3, "shots", params={"threshold": 30.0}), ShotTable.from_frames(24.0, [(0, 3)]))
    store.put_value(_new(a.id, 4, "emb", "2"), np.arange(6, dtype=np.float32).reshape(2, 3))
    store.record_features([("never_computed", "1", "3" * 64, "cpu")])

    entries = store.catalogue()

    assert [(e.ref, e.params, e.value_count, e.asset_count) for e in entries] == [
        ("emb@2", {}, 1, 1),
        ("shots@1", {"threshold": 27.0}, 2, 2),
        ("shots@1", {"threshold": 30.0}, 1, 1),
    ]
    emb, shots, _ = entries
    assert (emb.payload_kind, emb.output_type, emb.module, emb.resources) == ("array", "numpy.ndarray", MODULE, "gpu")
    assert (emb.model_fingerprint, emb.fingerprint) == ("weights-1", "2" * 64)
    assert (shots.payload_kind, shots.output_type, shots.module) == (
        "json",
        "mediamesh.features.values.ShotTable",
        MODULE,
    )
    assert shots.first_computed < shots.last_computed
    assert [e.ref for e in store.catalogue("emb")] == ["emb@2"]
    assert store.stored_feature_names() == ["emb", "shots"]
    assert emb.to_json()["first_computed"] == emb.first_computed.isoformat()
    with store.engine.connect() as conn:  # both module rows are kept: rows are only ever inserted
        modules = conn.execute(sa.text("SELECT module FROM feature_versions WHERE name = 'shots' ORDER BY module"))
        assert list(modules.scalars()) == ["", MODULE]


def test_values_decode_without_their_code(local_store: Store, tmp_path: Path) -> None:
    store = local_store
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"some media bytes")
    asset, _ = store.register_asset(clip, name="a")
    table = ShotTable.from_frames(24.0, [(0, 10), (10, 20)])
    shots = store.put_value(_new(asset.id, 1, "shots"), table)
    emb = store.put_value(_new(asset.id, 2, "emb"), np.arange(6, dtype=np.float32).reshape(2, 3))
    media = EncodedMedia(clip, 4, 2, 24.0, 20, 0.8, False)
    encoded = store.put_value(_new(asset.id, 3, "encode"), media)

    assert store.load(shots, None) == table.to_json()
    array = store.load(emb, None)
    assert isinstance(array, np.ndarray) and array.tolist() == [[0, 1, 2], [3, 4, 5]]
    path = store.load(encoded, None)
    assert isinstance(path, Path) and path.read_bytes() == b"some media bytes"
    assert encoded.meta == media.to_meta()
