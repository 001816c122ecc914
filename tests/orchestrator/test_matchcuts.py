"""``mediamesh matchcuts`` over titles built from the shared clips: a planted frame match across two titles, a
planted pan that only motion finds, and within-title pairs that are never adjacent shots or repeats."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from PIL import Image

from mediamesh.features import default_registry
from mediamesh.features.matchcut import REPEAT_ABOVE
from mediamesh.features.values import DedupMap
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.api_support import TOKEN, api_client
from tests.orchestrator.test_cli import DATA, mediamesh
from tests.postgres import fresh_roles_database

WIDTH, HEIGHT, FPS = 320, 180, 25
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FIT = f"scale={WIDTH}:{HEIGHT}"
# A camera panning right over an image twice the frame's width: the frame's left edge moves 100 px a second.
PAN = f"scale={2 * WIDTH}:{HEIGHT},crop={WIDTH}:{HEIGHT}:'t*100':0"
# Scaled by about 6%, shifted a few pixels off centre and colour graded.
GRADED = f"scale={WIDTH + 20}:{HEIGHT + 12},crop={WIDTH}:{HEIGHT}:14:8,eq=brightness=0.05:saturation=1.3:gamma=1.1"


@pytest.fixture(scope="module")
def titles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Title A: leaf, deer, a pan right over the bunny's meadow, leaf again (a repeat). Title B: a card, the
    deer's frame graded and reframed (a match for the end of A's deer shot), a pan right over another scene
    (a motion match for the end of A's pan, though the two look nothing alike), the card again."""
    folder = tmp_path_factory.mktemp("matchcut-titles")
    leaf, deer = _still("testvideo.mp4", 3.0, folder / "leaf.png"), _still("testvideo.mp4", 9.0, folder / "deer.png")
    meadow = _still("bigbuckbunny.mp4", 2.0, folder / "meadow.png")
    street = _still("issue-195-aspect-ratio.mp4", 4.0, folder / "street.png")
    card = _still("issue-195-aspect-ratio.mp4", 14.0, folder / "card.png")
    testvideo = folder / "testvideo.mp4"
    testvideo.write_bytes((DATA / "testvideo.mp4").read_bytes())
    return {
        "a": _title(folder / "title-a.mp4", [(leaf, 1.2, FIT), (deer, 1.2, FIT), (meadow, 1.6, PAN), (leaf, 1.2, FIT)]),
        "b": _title(
            folder / "title-b.mp4", [(card, 1.2, FIT), (deer, 1.2, GRADED), (street, 1.6, PAN), (card, 1.2, FIT)]
        ),
        "testvideo": testvideo,
    }


@pytest.fixture(scope="module")
def env(
    postgres: str, prefect_api: str, tmp_path_factory: pytest.TempPathFactory, titles: dict[str, Path]
) -> Iterator[dict[str, str]]:
    """A user whose store has the three titles registered, nothing computed: ``matchcuts`` computes what it reads."""
    home = tmp_path_factory.mktemp("matchcut-home")
    with fresh_roles_database(postgres) as roles:
        with open_store(StoreSettings(home=home / "home", database_url=roles.app_url)) as store:
            for path in titles.values():
                store.register_asset(path, name=str(path))
        yield {
            **os.environ,
            "MEDIAMESH_HOME": str(home / "home"),
            "MEDIAMESH_DATABASE_URL": roles.app_url,
            "PREFECT_API_URL": prefect_api,
            "MEDIAMESH_ENCODERS": "lite",
            "MEDIAMESH_DEVICE": "cpu",
            "MEDIAMESH_CONFIG": str(home / "no-config.toml"),
            "COLUMNS": "200",
        }


@pytest.fixture(scope="module")
def frame_across(env: dict[str, str], titles: dict[str, Path]) -> dict[str, Any]:
    return _pairs(env, str(titles["a"]), str(titles["b"]), "--flavour", "frame", "--top", "5")


def test_a_graded_reframed_copy_of_a_last_frame_is_found_across_titles(
    frame_across: dict[str, Any], titles: dict[str, Path]
) -> None:
    pairs = frame_across["pairs"]
    assert 1 <= len(pairs) <= 5
    assert [p["score"] for p in pairs] == sorted((p["score"] for p in pairs), reverse=True)
    assert all(p["a"]["asset"] != p["b"]["asset"] and p["flavour"] == "frame" for p in pairs)
    assert _named(pairs, titles)[0:2] in (
        [("a", 1, "b", 1), ("b", 1, "a", 1)],
        [("b", 1, "a", 1), ("a", 1, "b", 1)],
    )
    deer = next(p for p in pairs if _name(p["a"], titles) == "a")
    assert deer["a"] == {
        "asset": deer["a"]["asset"],
        "name": str(titles["a"]),
        "shot": 1,
        "start_time": pytest.approx(1.2, abs=0.05),
        "end_time": pytest.approx(2.4, abs=0.05),
    }
    assert set(frame_across["versions"]) == {"shots", "frame_match"}


def test_a_pan_carried_across_titles_is_found_by_motion_and_not_by_frame(
    env: dict[str, str], titles: dict[str, Path], frame_across: dict[str, Any]
) -> None:
    motion = _pairs(env, str(titles["a"]), str(titles["b"]), "--flavour", "motion", "--top", "2")
    assert ("a", 2, "b", 2) in _named(motion["pairs"], titles)
    assert all(p["flavour"] == "motion" for p in motion["pairs"])
    assert not {("a", 2, "b", 2), ("b", 2, "a", 2)} & set(_named(frame_across["pairs"], titles))


def test_within_a_title_no_pair_is_adjacent_or_a_repeat(
    env: dict[str, str], titles: dict[str, Path], tmp_path: Path
) -> None:
    sheet = tmp_path / "pairs.png"
    # More than the default K: a value of its own, computed for this call.
    within = _pairs(env, str(titles["a"]), "--top", "30", "--out", str(sheet))
    # Shot 3 repeats shot 0, so it is represented by shot 0; 0->1 and 1->2 are the title's own cuts.
    assert {(p["a"]["shot"], p["b"]["shot"]) for p in within["pairs"]} <= {(0, 2), (1, 0), (2, 0), (2, 1)}
    assert within["versions"].keys() == {"shots", "frame_match_cuts"}
    with Image.open(sheet) as image:
        assert image.size == (2 * WIDTH + 12, len(within["pairs"]) * (HEIGHT + 36 + 8))

    testvideo = _pairs(env, str(titles["testvideo"]), "--flavour", "frame")
    with open_store(
        StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    ) as store:
        [asset] = {p["a"]["asset"] for p in testvideo["pairs"]}
        [record] = store.values_for(asset, "dedup")
        groups = store.load(record, DedupMap).representative
    assert testvideo["pairs"]
    for pair in testvideo["pairs"]:
        a, b = pair["a"]["shot"], pair["b"]["shot"]
        assert b not in (a, a + 1) and groups[a] != groups[b]
    # The copyright card ends shot 0 and starts shot 2 again: the same picture twice is a repeat, never a pair.
    assert (0, 2) not in {(p["a"]["shot"], p["b"]["shot"]) for p in testvideo["pairs"]}
    assert all(p["score"] <= REPEAT_ABOVE for p in testvideo["pairs"])


def _pairs(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = mediamesh(env, "matchcuts", *args, "--json")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _name(side: dict[str, Any], titles: dict[str, Path]) -> str:
    return next(key for key, path in titles.items() if side["name"] == str(path))


def _named(pairs: list[dict[str, Any]], titles: dict[str, Path]) -> list[tuple[str, int, str, int]]:
    return [(_name(p["a"], titles), p["a"]["shot"], _name(p["b"], titles), p["b"]["shot"]) for p in pairs]


def _still(clip: str, at: float, out: Path) -> Path:
    _ffmpeg("-ss", str(at), "-i", str(DATA / clip), "-frames:v", "1", str(out))
    return out


def _title(out: Path, shots: list[tuple[Path, float, str]]) -> Path:
    """Stills and pans cut together: each shot an image looped for its seconds through its filter."""
    inputs: list[str] = []
    graph: list[str] = []
    for i, (image, seconds, vf) in enumerate(shots):
        inputs += ["-loop", "1", "-framerate", str(FPS), "-t", str(seconds), "-i", str(image)]
        graph.append(f"[{i}]{vf},setsar=1,format=yuv420p[s{i}]")
    graph.append("".join(f"[s{i}]" for i in range(len(shots))) + f"concat=n={len(shots)}:v=1:a=0[v]")
    _ffmpeg(
        *inputs, "-filter_complex", ";".join(graph), "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", str(out)
    )
    return out


def _ffmpeg(*args: str) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_post_matchcuts_answers_as_the_cli_does(
    env: dict[str, str], frame_across: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MEDIAMESH_ENCODERS", "MEDIAMESH_DEVICE", "MEDIAMESH_CONFIG", "PREFECT_API_URL"):
        monkeypatch.setenv(name, env[name])
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with open_store(settings) as store, api_client(Mesh(store, default_registry())) as client:
        assets = [frame_across["pairs"][0]["a"]["asset"], frame_across["pairs"][0]["b"]["asset"]]
        answer = client.post("/matchcuts", json={"assets": assets, "top": 5}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["pairs"] == frame_across["pairs"]
        too_many = client.post("/matchcuts", json={"assets": assets[:1], "top": 500}, headers=AUTH)
        assert too_many.status_code == 422 and "best 20 frame match cuts" in too_many.text
        assert client.post("/matchcuts", json={"assets": []}, headers=AUTH).status_code == 422
