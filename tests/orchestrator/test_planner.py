from pathlib import Path

import pytest
import sqlalchemy as sa

from mediamesh.features import DefinitionError, Registry
from mediamesh.orchestrator import Mesh, plan
from mediamesh.store import Store
from tests.orchestrator.resources import counting_features as cf
from tests.orchestrator.resources import gated_features as gated


@pytest.fixture
def registry() -> Registry:
    return Registry([cf.size, cf.doubled])


def _assets(store: Store, tmp_path: Path, n: int) -> list[str]:
    ids = []
    for i in range(n):
        path = tmp_path / f"asset{i}.bin"
        path.write_bytes(f"asset number {i}".encode())
        ids.append(store.register_asset(path, name=str(path))[0].id)
    return ids


def test_plan_keys_follow_from_identity_and_chain_through_inputs(
    local_store: Store, registry: Registry, tmp_path: Path
) -> None:
    [asset] = _assets(local_store, tmp_path, 1)
    first = plan(local_store, registry, [asset])
    again = plan(local_store, registry, [asset])
    assert [v.key for v in first.values] == [v.key for v in again.values]
    size_value, doubled_value = first.values
    assert (size_value.feature, doubled_value.feature) == ("size", "doubled")
    assert size_value.inputs == (("source", asset),)
    assert doubled_value.inputs == (("size", size_value.key),)
    bumped = registry.replace(registry["size"].replace(version="2"))
    bumped_plan = plan(local_store, bumped, [asset])
    assert all(a.key != b.key for a, b in zip(first.values, bumped_plan.values, strict=True))
    other_params = registry.replace(registry["doubled"].replace(params={"factor": 3}))
    keys = [v.key for v in plan(local_store, other_params, [asset]).values]
    assert keys[0] == size_value.key and keys[1] != doubled_value.key


def test_to_compute_is_plan_minus_stored(
    local_store: Store, registry: Registry, tmp_path: Path, prefect_api: str
) -> None:
    assets = _assets(local_store, tmp_path, 3)
    mesh = Mesh(local_store, registry, home=tmp_path)
    first = plan(local_store, registry, assets)
    assert len(first.missing) == 6 and not first.stored
    mesh.run(plan(local_store, registry, assets[:1]), trigger="test")
    second = plan(local_store, registry, assets)
    assert len(second.stored) == 2 and len(second.missing) == 4
    assert {v.asset for v in second.missing} == set(assets[1:])
    assert len(second.reused) == 2


def test_a_stored_target_needs_none_of_its_inputs(
    local_store: Store, registry: Registry, tmp_path: Path, prefect_api: str
) -> None:
    [asset] = _assets(local_store, tmp_path, 1)
    Mesh(local_store, registry, home=tmp_path).run(plan(local_store, registry, [asset]), trigger="test")
    only_doubled = plan(local_store, registry, [asset], ["doubled"])
    assert only_doubled.missing == ()
    assert only_doubled.targets == ("doubled",)


def test_unknown_target_suggests_the_nearest(local_store: Store, registry: Registry) -> None:
    with pytest.raises(DefinitionError, match=r"no feature named 'dubled'.*Did you mean 'doubled'\?"):
        plan(local_store, registry, [], ["dubled"])


def test_planning_many_assets_is_one_query(local_store: Store, registry: Registry, tmp_path: Path) -> None:
    assets = [f"{i:064x}" for i in range(500)]
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(local_store.engine, "before_cursor_execute", count)
    try:
        the_plan = plan(local_store, registry, assets)
    finally:
        sa.event.remove(local_store.engine, "before_cursor_execute", count)
    assert len(the_plan.values) == 1000 and len(the_plan.missing) == 1000
    assert len(statements) == 1 and "feature_values" in statements[0]


def test_a_registry_whose_outputs_cannot_be_stored_is_refused(local_store: Store, tmp_path: Path) -> None:
    from tests.features.resources import chain_features

    with pytest.raises(DefinitionError, match=r"feature size@1 returns int, which mediamesh cannot store"):
        Mesh(local_store, Registry.from_modules(chain_features), home=tmp_path)


def test_attaching_subtitles_changes_only_what_reads_them(local_store: Store, tmp_path: Path, prefect_api: str) -> None:
    registry = Registry([cf.size, cf.doubled, cf.subtitle_files])
    video = tmp_path / "film.mp4"
    video.write_bytes(b"film bytes")
    mesh = Mesh(local_store, registry, home=tmp_path)
    [first] = mesh.ingest([video])
    assert (first.computed, first.asset) == (3, first.asset)
    assert first.asset is not None
    assert mesh.read(first.asset, "subtitle_files")[1] == cf.Number(0)

    (tmp_path / "film.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    [second] = mesh.ingest([video])
    assert (second.computed, second.reused) == (1, 2)
    assert mesh.read(first.asset, "subtitle_files")[1] == cf.Number(1)

    extra = tmp_path / "elsewhere.de.srt"
    extra.write_text("1\n00:00:00,000 --> 00:00:01,000\nHallo\n")
    [third] = mesh.ingest([video], subtitles=[extra])
    assert (third.computed, third.reused) == (1, 2)
    assert mesh.read(first.asset, "subtitle_files")[1] == cf.Number(2)
    [again] = mesh.ingest([video], subtitles=[extra])
    assert (again.computed, again.reused) == (0, 3)
    with pytest.raises(ValueError, match="one input at a time"):
        mesh.ingest([video, video], subtitles=[extra])


def test_editing_a_synopsis_recomputes_only_what_reads_it(local_store: Store, tmp_path: Path, prefect_api: str) -> None:
    from mediamesh.features import TitleMetadata

    registry = Registry([cf.size, cf.doubled, cf.synopsis_length])
    video = tmp_path / "film.mp4"
    video.write_bytes(b"film bytes for titles")
    (tmp_path / "film.json").write_text('{"title": "Film", "synopsis": "Short."}')
    mesh = Mesh(local_store, registry, home=tmp_path)
    [first] = mesh.ingest([video])
    assert first.asset is not None
    assert first.computed == 3
    assert mesh.read(first.asset, "synopsis_length")[1] == cf.Number(6)
    assert local_store.title_metadata(first.asset) == TitleMetadata("Film", "Short.")

    [edited] = mesh.ingest([video], title=TitleMetadata(synopsis="A longer synopsis."))
    assert (edited.computed, edited.reused) == (1, 2)
    assert mesh.read(first.asset, "synopsis_length")[1] == cf.Number(18)
    assert local_store.title_metadata(first.asset) == TitleMetadata("Film", "A longer synopsis.")
    [same] = mesh.ingest([video], title=TitleMetadata(synopsis="A longer synopsis."))
    assert (same.computed, same.reused) == (0, 3)


def test_assets_without_title_metadata_never_share_a_value_key(local_store: Store, tmp_path: Path) -> None:
    registry = Registry([cf.size, cf.synopsis_length, cf.subtitle_files])
    assets = _assets(local_store, tmp_path, 3)
    the_plan = plan(local_store, registry, assets)
    keys = [v.key for v in the_plan.values]
    assert len(set(keys)) == len(keys) == 9


def test_values_that_do_not_read_the_media_wait_for_its_gate_outside_their_keys(
    local_store: Store, tmp_path: Path
) -> None:
    registry = gated.registry()
    [asset] = _assets(local_store, tmp_path, 1)
    the_plan = plan(local_store, registry, [asset])
    by_feature = {v.feature: v for v in the_plan.values}
    gate = by_feature["encode"].key
    # The gate comes first, though the registry's own order puts ``blurb`` before it.
    assert [v.feature for v in the_plan.values] == ["encode", "blurb", "halved", "subtitle_files", "synopsis_length"]
    assert {f: v.gate for f, v in by_feature.items()} == {
        "encode": None,
        "halved": None,  # it reads the gate
        "blurb": gate,
        "subtitle_files": gate,
        "synopsis_length": gate,
    }
    assert by_feature["blurb"].upstream_keys == (gate,)
    assert by_feature["halved"].upstream_keys == (gate,)
    # An ordering, not an input: the keys are those of a registry without the gate.
    ungated = plan(local_store, Registry([gated.blurb, cf.synopsis_length, cf.subtitle_files]), [asset])
    assert all(v.gate is None for v in ungated.values)
    assert {v.feature: v.key for v in ungated.values} == {
        f: by_feature[f].key for f in ("blurb", "synopsis_length", "subtitle_files")
    }
    # A target that does not read the media still needs the gate computed first.
    alone = plan(local_store, registry, [asset], ["synopsis_length"])
    assert [v.feature for v in alone.missing] == ["encode", "synopsis_length"]
    assert [v.feature for v in alone.reused] == []
