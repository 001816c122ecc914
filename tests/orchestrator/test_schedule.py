"""The engine's one rule for the order of a run: only ready values are handed out, a feature's ready values
shared among the free threads as stages, and a failure skips what depends on it."""

from pathlib import Path

from mediamesh.features import ExecutionError, Registry
from mediamesh.orchestrator import plan
from mediamesh.orchestrator.execution.engine import COMPUTED, FAILED, MAX_STAGE, SKIPPED, Schedule
from mediamesh.store import Store
from tests.orchestrator.resources import counting_features as cf


def _assets(store: Store, tmp_path: Path, count: int) -> list[str]:
    assets = []
    for i in range(count):
        path = tmp_path / f"clip{i}.mp4"
        path.write_bytes(f"clip {i}".encode())
        assets.append(store.register_asset(path, name=path.name)[0].id)
    return assets


def test_only_ready_values_are_handed_out_in_stages_of_one_feature(local_store: Store, tmp_path: Path) -> None:
    assets = _assets(local_store, tmp_path, 3)
    missing = plan(local_store, Registry([cf.size, cf.doubled]), assets).missing
    schedule = Schedule(missing)

    first = schedule.next_stage(free=2)
    second = schedule.next_stage(free=1)
    # Three sizes shared by two idle threads: two, then the one left; no `doubled` before its size is done.
    assert [len(first), len(second)] == [2, 1]
    assert {v.spec.name for v in first + second} == {"size"}
    assert {v.asset for v in first + second} == set(assets)
    assert schedule.next_stage(free=2) == ()

    done, broken, _ = first + second
    schedule.finished({done.key: (COMPUTED, None), broken.key: (FAILED, ExecutionError("bad"))})
    [ready] = schedule.next_stage(free=1)
    assert (ready.spec.name, ready.asset) == ("doubled", done.asset)
    skipped = [k for k, (outcome, _) in schedule.outcomes.items() if outcome == SKIPPED]
    assert [
        v.asset for v in plan(local_store, Registry([cf.size, cf.doubled]), assets).missing if v.key in skipped
    ] == [broken.asset]


def test_a_stage_holds_at_most_max_stage_values(local_store: Store, tmp_path: Path) -> None:
    assets = _assets(local_store, tmp_path, MAX_STAGE + 3)
    schedule = Schedule(plan(local_store, Registry([cf.size]), assets).missing)
    assert [len(schedule.next_stage(free=1)), len(schedule.next_stage(free=1))] == [MAX_STAGE, 3]
