import threading
from pathlib import Path

import pytest

from mediamesh.features import Registry, TitleMetadata
from mediamesh.orchestrator import Mesh, plan
from mediamesh.store import Store
from tests.orchestrator.resources import counting_features as cf
from tests.orchestrator.resources import gated_features as gated


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    cf.CALLS.clear()


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ingest_computes_then_reuses(local_store: Store, tmp_path: Path, prefect_api: str) -> None:
    mesh = Mesh(local_store, Registry([cf.size, cf.doubled]), home=tmp_path)
    good = _file(tmp_path, "good.mp4", b"good bytes")
    [first] = mesh.ingest([good])
    assert (first.computed, first.reused, first.failed, first.errors) == (2, 0, 0, [])
    renamed = _file(tmp_path, "renamed.mp4", b"good bytes")
    [second] = mesh.ingest([renamed])
    assert (second.asset, second.computed, second.reused) == (first.asset, 0, 2)
    assert first.asset is not None
    record, value = mesh.read(first.asset, "doubled")
    assert value == cf.Number(20) and record.ref == "doubled@1"
    assert local_store.lineage(record.key)[0][0] == "size"


def test_bad_input_fails_alone_and_is_recorded_against_its_asset(
    local_store: Store, tmp_path: Path, prefect_api: str
) -> None:
    mesh = Mesh(local_store, Registry([cf.size, cf.doubled]), home=tmp_path)
    bad = _file(tmp_path, "bad.mp4", b"bad bytes")
    good = _file(tmp_path, "good.mp4", b"good bytes!")
    missing = tmp_path / "missing.mp4"
    results = mesh.ingest([bad, missing, good])
    by_name = {Path(r.path).name: r for r in results}
    assert by_name["good.mp4"].ok and by_name["good.mp4"].computed == 2
    assert by_name["bad.mp4"].failed == 1 and not by_name["bad.mp4"].ok
    [message] = by_name["bad.mp4"].errors
    assert message.startswith(f"cannot decode '{bad}': invalid data [size@1, asset ")
    assert by_name["missing.mp4"].asset is None
    assert by_name["missing.mp4"].errors == [f"{missing}: no such file"]
    bad_asset = by_name["bad.mp4"].asset
    assert bad_asset is not None
    assert local_store.values_for(bad_asset) == []
    [attempt] = local_store.attempts_for(bad_asset)
    assert (attempt.feature, attempt.error_type, attempt.retryable) == ("size", "MediaError", False)
    assert cf.CALLS[("size", bad_asset)] == 1  # not retried
    _, states = mesh.status(bad_asset)
    assert [(s.feature, s.state) for s in states] == [("size", "failed"), ("doubled", "missing")]


def test_an_asset_whose_media_is_bad_gets_no_value_at_all(local_store: Store, tmp_path: Path, prefect_api: str) -> None:
    mesh = Mesh(local_store, gated.registry(), home=tmp_path)
    bad = _file(tmp_path, "bad.mp4", b"bad bytes")
    good = _file(tmp_path, "good.mp4", b"good bytes")
    for video in (bad, good):
        video.with_suffix(".json").write_text('{"title": "A Film", "synopsis": "Short."}')
    bad_result, good_result = mesh.ingest([bad, good])
    assert (good_result.computed, good_result.failed, good_result.errors) == (5, 0, [])
    # Its title features read no media, yet wait for the encode that failed.
    assert (bad_result.computed, bad_result.reused, bad_result.failed) == (0, 0, 1)
    [message] = bad_result.errors
    assert message.startswith(f"cannot decode '{bad}': invalid data [encode@1, asset ")
    bad_asset = bad_result.asset
    assert bad_asset is not None
    assert local_store.values_for(bad_asset) == []
    assert [a.feature for a in local_store.attempts_for(bad_asset)] == ["encode"]
    assert local_store.title_metadata(bad_asset) == TitleMetadata("A Film", "Short.")
    _, states = mesh.status(bad_asset)
    assert {s.feature: s.state for s in states} == {
        "encode": "failed",
        "blurb": "missing",
        "halved": "missing",
        "subtitle_files": "missing",
        "synopsis_length": "missing",
    }
    # Asked for alone, a feature that reads no media takes the gate with it, and fails with it.
    report = mesh.backfill("synopsis_length", assets=[bad_asset])
    assert (report.computed, report.failed) == (0, 1)
    assert local_store.values_for(bad_asset) == []


def test_retryable_errors_are_retried_and_others_are_not(local_store: Store, tmp_path: Path, prefect_api: str) -> None:
    mesh = Mesh(local_store, Registry([cf.flaky, cf.buggy]), home=tmp_path)
    [result] = mesh.ingest([_file(tmp_path, "clip.mp4", b"clip")])
    assert result.asset is not None
    assert cf.CALLS[("flaky", result.asset)] == 3
    assert cf.CALLS[("buggy", result.asset)] == 1
    assert (result.computed, result.failed) == (1, 1)
    assert result.errors == [
        f"{tmp_path / 'clip.mp4'}: ZeroDivisionError: division by zero [buggy@1, asset {result.asset[:12]}]"
    ]
    attempts = local_store.attempts_for(result.asset)
    assert sorted((a.feature, a.retryable) for a in attempts) == [("buggy", False), ("flaky", True), ("flaky", True)]


def test_two_runs_of_the_same_plan_at_once_compute_each_value_once(
    local_store: Store, tmp_path: Path, prefect_api: str
) -> None:
    registry = Registry([cf.size, cf.doubled])
    mesh = Mesh(local_store, registry, home=tmp_path)
    paths = [_file(tmp_path, f"clip{i}.mp4", f"clip {i}".encode()) for i in range(3)]
    assets = [local_store.register_asset(p, name=str(p))[0].id for p in paths]
    the_plan = plan(local_store, registry, assets)
    reports = []

    def run() -> None:
        reports.append(mesh.run(the_plan, trigger="race"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.computed for r in reports) == 6
    assert sum(r.reused for r in reports) == 6
    assert all(cf.CALLS[("size", a)] == 1 for a in assets)
    assert cf.CALLS[("doubled", "")] == 3
    assert sum(len(local_store.values_for(a)) for a in assets) == 6
