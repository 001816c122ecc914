"""The search indexes and gateway end to end: dialogue in two languages, reverse shot search with a JPEG cut
from the original, time ranges, HTTP and Python answering alike, bad queries, and a rebuild that changes
nothing; visual text search through a tiny CLIP's text tower; a backfilled version searched by its pin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediamesh.features import default_registry
from mediamesh.features.queries import QueryNotSupportedError
from mediamesh.features.values import TitleMetadata
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import Store
from tests.models import TinyModels
from tests.orchestrator.api_support import TOKEN, api_client
from tests.orchestrator.search_support import (
    ENGLISH,
    FRENCH,
    copy_with_sidecar,
    query_frame,
    save_tiny_clip_with_tokenizer,
)

DATA = Path(__file__).parents[1] / "data"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TARGETS = ["timed_text", "text_embedding", "video_embedding", "fused"]


def _first(answer: Any) -> tuple[str, int]:
    hit = answer.hits[0]
    return hit.asset, hit.shot


def test_dialogue_image_and_time_search_answer_alike_in_python_and_over_http_and_survive_a_rebuild(
    lite_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path
) -> None:
    mesh = Mesh(local_store, default_registry(), home=tmp_path)
    english = copy_with_sidecar(DATA, "testvideo.mp4", tmp_path / "a", "en", ENGLISH)
    french = copy_with_sidecar(DATA, "issue-195-aspect-ratio.mp4", tmp_path / "b", "fr", FRENCH)
    results = mesh.ingest([english, french], targets=TARGETS)
    assert all(r.ok for r in results), results
    a, b = (r.asset for r in results)
    assert a is not None and b is not None

    # Dialogue: the phrase's asset, shot and cue first; the other language too; a word said nowhere finds nothing.
    said = mesh.search(kind="text", text="purple elephant", sources=["dialogue"])
    assert _first(said) == (a, 2)
    assert said.hits[0].cue == {
        "text": "Nobody expected the purple elephant.",
        "start": 7.0,
        "end": 9.0,
        "language": "en",
    }
    assert said.hits[0].name == str(english.resolve()) and "dialogue" in said.hits[0].sources
    assert (said.hits[0].start_time, said.hits[0].end_time) == pytest.approx((6.006, 13.146), abs=0.05)
    assert said.versions == {"dialogue": "timed_text@1", "dialogue_semantic": "text_embedding@2"}
    chanté = mesh.search(kind="text", text="boulanger pluie", sources=["dialogue"], languages=["fr"])
    assert _first(chanté) == (b, 0) and chanté.hits[0].cue is not None and chanté.hits[0].cue["language"] == "fr"
    assert mesh.search(kind="text", text="boulanger", sources=["dialogue"], languages=["en"]).hits == []
    assert mesh.search(kind="text", text="xylophone", sources=["dialogue"]).hits == []
    lite = mesh.search(kind="text", text="purple elephant")  # visual too: the lite set says why it cannot
    assert _first(lite) == (a, 2)
    assert [n for n in lite.notes if n.startswith("visual:")] == [
        "visual: visual search by text needs a CLIP video model with a text tower; the lite video encoders have "
        "none (set MEDIAMESH_VIDEO_MODEL to a CLIP model, then backfill video_embedding)"
    ]

    # Reverse shot: a 480 px JPEG (quality 70) of the original's frame mid-shot finds that shot first.
    frame = query_frame(english, (1.001 + 6.006) / 2)
    by_image = mesh.search(kind="image", image=frame, top=5)
    assert _first(by_image) == (a, 1) and by_image.versions == {"video": "video_embedding@2"}

    # Time: every shot overlapping [5, 7) of each title, title by title.
    spans = mesh.search(kind="time", start=5.0, end=7.0)
    assert [(h.asset, h.shot) for h in spans.hits] == sorted([(a, 1), (a, 2), (b, 1), (b, 2)])
    only_b = mesh.search(kind="time", start=5.0, end=7.0, assets=[b])
    assert [(h.asset, h.shot) for h in only_b.hits] == [(b, 1), (b, 2)]
    local_store.set_title_metadata(b, TitleMetadata(title="B", tags=("Street", "night")), name="movie.json")
    tagged = mesh.search(kind="time", start=5.0, end=7.0, tags=["street"])
    assert [(h.asset, h.shot) for h in tagged.hits] == [(b, 1), (b, 2)]
    assert mesh.search(kind="time", start=5.0, end=7.0, tags=["street", "day"]).hits == []
    pages = [mesh.search(kind="time", start=5.0, end=7.0, top=1, offset=i).hits for i in range(5)]
    assert [(h.asset, h.shot) for page in pages for h in page] == [(h.asset, h.shot) for h in spans.hits]
    # Grouped by title: each title's hits together, titles in the order of their best hit.
    grouped = mesh.search(kind="similar", asset=a, shot=1, top=6, group=True)
    order = [h.asset for h in grouped.hits]
    assert order == sorted(order, key=order.index) and len(set(order)) == 2

    with api_client(mesh) as client:
        body = client.post(
            "/search", json={"kind": "text", "text": "purple elephant", "sources": ["dialogue"]}, headers=AUTH
        )
        assert body.status_code == 200, body.text
        assert body.json() == said.to_json()
        assert list(body.json()["hits"][0]) == [
            "asset",
            "name",
            "shot",
            "start_time",
            "end_time",
            "score",
            "sources",
            "cue",
            "link",
        ]
        upload = client.post(
            "/search/image",
            files={"image": ("frame.jpg", frame, "image/jpeg")},
            data={"request": '{"top": 5}'},
            headers=AUTH,
        )
        assert upload.status_code == 200, upload.text
        assert upload.json() == by_image.to_json()
        assert client.post("/search", json={"kind": "text", "text": "x"}).status_code == 401
        for bad in (
            {"kind": "text", "text": "   "},
            {"kind": "time", "start": 5, "end": 2},
            {"kind": "text", "text": "x", "top": 100_000},
            {"kind": "similar", "asset": a},
            {"kind": "text", "text": "x", "server_path": "/etc/passwd"},
        ):
            refused = client.post("/search", json=bad, headers=AUTH)
            assert refused.status_code == 422, (bad, refused.text)
        unknown = client.post(
            "/search", json={"kind": "text", "text": "x", "versions": {"timed_text": "9"}}, headers=AUTH
        )
        assert unknown.status_code == 404 and "holds no timed_text@9" in unknown.text
        garbage = client.post("/search/image", files={"image": ("x.jpg", b"not an image", "image/jpeg")}, headers=AUTH)
        assert garbage.status_code == 422 and "not a readable image" in garbage.text

    # A rebuild derives the same rows: every index in sync, and the same answers.
    assert all(scope.in_sync for scope in mesh.index_scopes())
    similar = mesh.search(kind="similar", asset=a, shot=2, top=3)
    assert (a, 2) not in [(h.asset, h.shot) for h in similar.hits]
    for name in ("dialogue", "dialogue_semantic", "video", "fused", "shots"):
        report = mesh.rebuild_index(name)
        assert report.dropped > 0 and report.values >= 2, report
    assert mesh.search(kind="text", text="purple elephant", sources=["dialogue"]).to_json() == said.to_json()
    assert mesh.search(kind="image", image=frame, top=5).to_json() == by_image.to_json()
    assert mesh.search(kind="similar", asset=a, shot=2, top=3).to_json() == similar.to_json()
    assert all(scope.in_sync for scope in mesh.index_scopes())


def test_visual_text_search_uses_the_text_tower_of_the_model_that_made_the_vectors(
    tiny_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = save_tiny_clip_with_tokenizer(tmp_path / "clip-with-tokenizer", seed=0)
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", str(clip))
    mesh = Mesh(local_store, default_registry(), home=tmp_path)
    [result] = mesh.ingest([DATA / "testvideo.mp4"], targets=["video_embedding"])
    assert result.ok, result

    answer = mesh.search(kind="text", text="a red car", sources=["visual"], top=3)
    assert answer.notes == [] and answer.versions == {"video": "video_embedding@2"}
    assert len(answer.hits) == 3 and all(h.sources == ["visual"] for h in answer.hits)
    # The ranking is the text tower's: cosine between its query and each shot's stored vector.
    from mediamesh.features.queries import visual_text_query

    query, model = visual_text_query("a red car")
    record, vectors = mesh.read(result.asset or "", "video_embedding")
    assert record.model_fingerprint == model
    expected = np.argsort(-(vectors.data @ query), kind="stable")[:3].tolist()
    assert [h.shot for h in answer.hits] == expected

    # Another CLIP's text tower finds nothing among vectors it did not make, and says why.
    other = save_tiny_clip_with_tokenizer(tmp_path / "other-clip", seed=1)
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", str(other))
    elsewhere = mesh.search(kind="text", text="a red car", sources=["visual"])
    assert elsewhere.hits == [] and len(elsewhere.notes) == 1 and "no vectors made by" in elsewhere.notes[0]

    monkeypatch.setenv("MEDIAMESH_ENCODERS", "lite")
    with pytest.raises(QueryNotSupportedError, match="the lite video encoders have none"):
        mesh.search(kind="text", text="a red car", sources=["visual"])


def test_a_backfilled_version_is_searchable_by_its_pin_and_by_default_once_promoted(
    lite_encoders: TinyModels, local_store: Store, prefect_api: str, tmp_path: Path
) -> None:
    registry = default_registry()
    older = Mesh(local_store, registry, home=tmp_path)
    [result] = older.ingest([DATA / "testvideo.mp4"], targets=["video_embedding"])
    asset = result.asset or ""
    local_store.promote_feature("video_embedding", "2")
    bumped = registry["video_embedding"].replace(version="3", params={"frames_per_shot": 1})
    newer = Mesh(local_store, registry.replace(bumped), home=tmp_path)
    assert newer.backfill("video_embedding").failed == 0

    def similar(mesh: Mesh, **pins: str) -> Any:
        return mesh.search(kind="similar", asset=asset, shot=1, top=3, versions=pins)

    assert similar(newer).versions == {"video": "video_embedding@2"}, "promoted: still v2"
    pinned = similar(newer, video_embedding="3")
    assert pinned.versions == {"video": "video_embedding@3"} and len(pinned.hits) == 3
    local_store.promote_feature("video_embedding", "3")
    assert similar(newer).versions == {"video": "video_embedding@3"}
    assert similar(newer).to_json() == pinned.to_json()
    assert similar(newer, video_embedding="2").versions == {"video": "video_embedding@2"}
    scopes = {(s.index, s.version): s for s in newer.index_scopes()}
    assert scopes[("video", "2")].in_sync and scopes[("video", "3")].in_sync
    assert scopes[("video", "3")].rows == scopes[("video", "2")].rows == 4
