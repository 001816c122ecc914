"""The one read path's rendering and slicing: what every interface prints for each value type."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mediamesh.features.values import Cue, DedupMap, ShotTable, TimedText
from mediamesh.orchestrator.interfaces.reads import ReadRequestError, ShotSlice, check_bounds, render
from mediamesh.store import ValueRecord

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _record(feature: str, payload_kind: str = "json", meta: dict[str, object] | None = None) -> ValueRecord:
    return ValueRecord(
        key="k" * 64,
        asset_id="a" * 64,
        feature=feature,
        version="1",
        params={},
        model_fingerprint=None,
        code_fingerprint="c",
        payload_kind=payload_kind,
        blob_key="b",
        meta=meta or {},
        shape=None,
        dtype=None,
        bytes=1,
        checksum="s",
        started_at=NOW,
        finished_at=NOW,
        duration_s=0.0,
        worker="w",
        device="cpu",
        created_at=NOW,
    )


def test_a_shot_table_renders_as_its_list_of_shot_records() -> None:
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 48), (48, 72)])
    records = render(_record("shots"), table)
    first = {"transition": None, "transition_start": None, "transition_end": None}
    cut = {**first, "transition": "cut"}
    assert records == [
        {"index": 0, "start_frame": 0, "end_frame": 24, "start_time": 0.0, "end_time": 1.0, **first},
        {"index": 1, "start_frame": 24, "end_frame": 48, "start_time": 1.0, "end_time": 2.0, **cut},
        {"index": 2, "start_frame": 48, "end_frame": 72, "start_time": 2.0, "end_time": 3.0, **cut},
    ]
    assert render(_record("shots"), table, ShotSlice(1, 3, 3)) == records[1:3]


def test_per_shot_tables_keep_only_what_their_shots_refer_to() -> None:
    text = TimedText(
        cues=(Cue(0.0, 1.0, "a"), Cue(1.0, 2.0, "b"), Cue(2.0, 3.0, "c")),
        per_shot=((0,), (1, 2), ()),
        origin="sidecar:x.srt",
        language="en",
    )
    sliced = render(_record("timed_text"), text, ShotSlice(1, 2, 3))
    assert sliced == {
        "cues": [
            {"index": 1, "start": 1.0, "end": 2.0, "text": "b"},
            {"index": 2, "start": 2.0, "end": 3.0, "text": "c"},
        ],
        "per_shot": [[1, 2]],
        "origin": "sidecar:x.srt",
        "language": "en",
    }
    assert len(render(_record("timed_text"), text)["cues"]) == 3
    assert render(_record("dedup"), DedupMap((0, 0, 2), "cosine"), ShotSlice(1, 3, 3)) == {
        "representative": [0, 2],
        "method": "cosine",
    }


def test_arrays_render_with_shape_and_dtype_and_null_for_nan() -> None:
    array = np.array([[1.0, np.nan], [np.inf, 4.0]], dtype=np.float32)
    assert render(_record("emb", "array"), array) == {
        "shape": [2, 2],
        "dtype": "float32",
        "meta": {},
        "data": [[1.0, None], [None, 4.0]],
    }
    with pytest.raises(ReadRequestError, match="holds <U1 values, which JSON cannot carry"):
        render(_record("words", "array"), np.array(["a"]))


def test_contradicting_bounds_are_refused_before_any_lookup() -> None:
    with pytest.raises(ReadRequestError, match="not both"):
        check_bounds(1, None, 2.0, None)
    with pytest.raises(ReadRequestError, match=r"stop \(1\) is before start \(3\)"):
        check_bounds(3, 1, None, None)
    with pytest.raises(ReadRequestError, match=r"t1 \(1.0\) must be after t0 \(3.0\)"):
        check_bounds(None, None, 3.0, 1.0)
