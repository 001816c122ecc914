"""``mediamesh show`` on issue-195-aspect-ratio.mp4 (six shots, 16:9 on display, anamorphic in the file): the
contact sheet's tiles in the encode's aspect, the timeline's blocks at the reference cuts, and the feature graph
coloured by state, as PNG and SVG."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mediamesh.features import Registry
from mediamesh.features.spec import feature
from mediamesh.features.values import DedupMap, ShotTable, ShotThumbnails, SourceMedia
from mediamesh.orchestrator.interfaces import pictures
from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.test_cli import DATA, mediamesh
from tests.postgres import fresh_roles_database

#: The clip's reference cuts (tests/data/shot_cuts.csv), in seconds.
CUTS = [2.8, 6.8, 12.04, 16.84, 19.36]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def env(postgres: str, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A store with the clip registered and nothing computed: ``show`` computes the thumbnails it draws."""
    folder = tmp_path_factory.mktemp("show")
    clip = folder / "issue-195-aspect-ratio.mp4"
    shutil.copyfile(DATA / clip.name, clip)
    with fresh_roles_database(postgres) as roles:
        with open_store(StoreSettings(home=folder / "home", database_url=roles.app_url)) as store:
            store.register_asset(clip, name=str(clip))
        yield {
            **os.environ,
            "MEDIAMESH_HOME": str(folder / "home"),
            "MEDIAMESH_DATABASE_URL": roles.app_url,
            "PREFECT_API_URL": prefect_api,
            "MEDIAMESH_ENCODERS": "lite",
            "MEDIAMESH_DEVICE": "cpu",
            "MEDIAMESH_CONFIG": str(folder / "no-config.toml"),
            "COLUMNS": "200",
            "CLIP": str(clip),
        }


@pytest.fixture(scope="module")
def sheet(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sheet") / "sheet.png"
    done = mediamesh(env, "show", env["CLIP"], "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def _values(env: dict[str, str]) -> tuple[ShotThumbnails, ShotTable]:
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with Mesh.open(settings=settings) as mesh:
        asset = mesh.store.resolve_local_asset(env["CLIP"])
        thumbs, table = (mesh.read(asset, name)[1] for name in ("thumbnails", "shots"))
    assert isinstance(thumbs, ShotThumbnails) and isinstance(table, ShotTable)
    return thumbs, table


def test_the_contact_sheet_has_six_tiles_in_the_encodes_aspect(env: dict[str, str], sheet: Path) -> None:
    thumbs, _table = _values(env)
    assert (thumbs.tile_width, thumbs.tile_height) == (160, 90)  # 16:9, square pixels
    assert thumbs.tiles == (0, 1, 2, 3, 4, 5)
    with Image.open(sheet) as drawn, Image.open(thumbs.path) as sprite:
        picture, tiles = np.asarray(drawn.convert("RGB"), dtype=np.float32), sprite.convert("RGB")
        gap, cell_h = 4, 90 + 18
        assert drawn.size == (gap + 6 * (160 + gap), gap + cell_h + gap)
        for shot in range(6):
            left = gap + shot * (160 + gap)
            tile = np.asarray(tiles.crop(thumbs.box(shot)), dtype=np.float32)
            assert np.abs(picture[gap : gap + 90, left : left + 160] - tile).mean() < 2, shot


def test_the_timeline_draws_six_blocks_at_the_reference_cuts(env: dict[str, str], sheet: Path, tmp_path: Path) -> None:
    out = tmp_path / "cuts.png"
    done = mediamesh(env, "show", env["CLIP"], "--timeline", "--out", str(out), "--width", "1000")
    assert done.returncode == 0, done.stderr
    with Image.open(out) as drawn:
        assert drawn.width == 1000
        top, _height = pictures.TIMELINE_STRIP
        row = np.asarray(drawn.convert("RGB"), dtype=np.int32)[top + 4]
    inner = row[pictures.TIMELINE_MARGIN : 1000 - pictures.TIMELINE_MARGIN]
    edges = [pictures.TIMELINE_MARGIN + i + 1 for i in np.flatnonzero(np.abs(np.diff(inner, axis=0)).sum(axis=1))]
    duration = _values(env)[1].shots[-1].end_time
    expected = [pictures.timeline_x(cut, duration, 1000) for cut in CUTS]
    assert len(edges) == len(CUTS), edges
    # Within a frame of the encode (1/24 s is about 1.8 px here) of each reference cut.
    assert all(abs(edge - want) <= 3 for edge, want in zip(edges, expected, strict=True)), (edges, expected)


def test_the_graph_colours_each_feature_by_its_state_as_png_and_svg(
    env: dict[str, str], sheet: Path, tmp_path: Path
) -> None:
    done = mediamesh(env, "show", env["CLIP"], "--graph", "--out", str(tmp_path / "g.svg"))
    assert done.returncode == 0, done.stderr
    nodes = {
        g.get("data-feature"): (g.get("class") or "").split()[1]
        for g in ET.parse(tmp_path / "g.svg").getroot().iter(f"{SVG}g")
    }
    assert {n: nodes[n] for n in ("source", "encode", "shots", "dedup", "thumbnails", "video_embedding")} == {
        "source": "input",
        "encode": "stored",
        "shots": "stored",
        "dedup": "stored",
        "thumbnails": "stored",
        "video_embedding": "missing",
    }
    png = mediamesh(env, "show", env["CLIP"], "--graph", "--out", str(tmp_path / "g.png"))
    assert png.returncode == 0, png.stderr
    with Image.open(tmp_path / "g.png") as drawn:
        colours = {colour for _count, colour in drawn.convert("RGB").getcolors(1 << 16) or []}
    for state in ("stored", "missing", "input"):
        assert _rgb(pictures.STATE_COLOURS[state]) in colours, state
    wrong = CliRunner().invoke(app, ["show", "x", "--graph", "--out", str(tmp_path / "g.gif")])
    assert wrong.exit_code == 2 and "--graph writes .png or .svg, not 'g.gif'" in wrong.output


def test_a_graph_drawn_from_states_places_each_feature_after_what_it_reads() -> None:
    graph = pictures.feature_graph(Registry([_first, _second]), {"first": "failed", "second": "running"})
    assert [(n.label, n.state, n.layer) for n in graph.nodes] == [
        ("source", "input", 0),
        ("first@1", "failed", 1),
        ("second@2", "running", 2),
    ]
    assert graph.edges == (("source", "first"), ("first", "second"))
    svg = pictures.graph_svg(graph, "a <title>")
    assert "a &lt;title&gt;" in svg and ET.fromstring(svg).tag == f"{SVG}svg"
    assert pictures.graph_png(graph).size == (2 * 16 + 3 * (170 + 60) - 60, 2 * 16 + 22 + 30 + 14 + 20)


@feature(version="1", name="first")
def _first(source: SourceMedia) -> DedupMap:
    """A stand-in reading the root input."""
    raise NotImplementedError


@feature(version="2", name="second")
def _second(first: DedupMap) -> DedupMap:
    """A stand-in reading the first."""
    raise NotImplementedError


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)
