"""The shot browser in a real headless Chromium (Debian's, driven by Playwright): sign in once, the titles page,
a title's timeline, grid and shot panel (similar shots, the player seeking to the shot), a dialogue search and an
image upload, a feature's page. Every image must decode and the console must stay clean; screenshots are saved
in each test's temp dir. One title (testvideo.mp4 with English subtitles) is ingested once for the module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import default_registry
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings, open_store
from tests.models import TinyModels
from tests.orchestrator.api_support import TOKEN, serving
from tests.orchestrator.search_support import ENGLISH, copy_with_sidecar, query_frame
from tests.postgres import fresh_roles_database

playwright = pytest.importorskip("playwright.sync_api")

DATA = Path(__file__).parents[1] / "data"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TARGETS = ["thumbnails", "timed_text", "text_embedding", "video_embedding"]
# Every <img> on the page has loaded and decoded to a picture of some width.
ALL_DECODED = "() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)"
# The title's sprite, which tiles show as CSS backgrounds, decodes as a picture.
SPRITE_DECODES = """async (url) => {
    const r = await fetch(url); const bitmap = await createImageBitmap(await r.blob());
    return [r.status, r.headers.get('content-type'), bitmap.width, bitmap.height]; }"""

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium: apt-get install chromium")


@pytest.fixture(scope="module")
def served(
    postgres: str, prefect_api: str, tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The API (token required, reads not open) over a store holding testvideo.mp4 with English subtitles."""
    folder = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as env, fresh_roles_database(postgres) as roles:
        env.setenv("MEDIAMESH_CONFIG", str(folder / "no-config.toml"))
        env.setenv("MEDIAMESH_ENCODERS", "lite")
        env.setenv("MEDIAMESH_TEXT_MODEL", str(tiny_models.minilm))
        env.setenv("MEDIAMESH_DEVICE", "cpu")
        with open_store(StoreSettings(home=folder / "home", database_url=roles.app_url)) as store:
            mesh = Mesh(store, default_registry(), home=folder / "home")
            clip = copy_with_sidecar(DATA, "testvideo.mp4", folder / "clips", "en", ENGLISH)
            [result] = mesh.ingest([clip], targets=TARGETS)
            assert result.ok and result.asset is not None, result
            app = create_app(lambda: mesh, ApiSettings(token=TOKEN), store_settings=StoreSettings(s3_endpoint=None))
            with serving(app) as base:
                yield {"base": base, "asset": result.asset, "clip": clip, "mesh": mesh}


@pytest.fixture(scope="module")
def context(served: dict[str, Any]) -> Iterator[Any]:
    """A browser context that signed in once through the login form: its cookie serves every later page."""
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        opened = browser.new_context(base_url=served["base"], viewport={"width": 1500, "height": 1000})
        page = opened.new_page()
        page.goto("/")
        assert "/login" in page.url
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{served['base']}/")
        page.close()
        yield opened
        browser.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page whose console errors and uncaught exceptions fail the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    opened.close()
    assert errors == []


def test_the_titles_page_lists_the_title_with_its_first_thumbnail(
    served: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    page.goto("/")
    row = page.locator(f"tr.asset[data-asset='{served['asset']}']")
    assert row.locator("a").nth(1).inner_text() == "testvideo.mp4"
    assert row.locator("td").nth(3).inner_text() == "4"
    assert row.locator(".state.stored", has_text="thumbnails").count() == 1
    page.wait_for_function(ALL_DECODED)
    assert page.evaluate("document.querySelector('td.first img').naturalWidth") == 160
    page.screenshot(path=tmp_path / "titles.png", full_page=True)


def test_a_shot_clicked_on_the_title_page_shows_its_panel_similar_shots_and_seeks_the_player(
    served: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    asset = served["asset"]
    page.goto(f"/title/{asset}")
    assert page.locator(".grid .shot").count() == 4
    page.wait_for_function(ALL_DECODED)
    assert page.evaluate(SPRITE_DECODES, f"/title/{asset}/sprite.jpg") == [200, "image/jpeg", 4 * 160, 90]
    page.screenshot(path=tmp_path / "title.png", full_page=True)

    page.click(".grid .shot[data-shot='2']")
    panel = page.locator("#panel .shot-panel[data-shot='2']")
    panel.wait_for()
    assert panel.locator("h2").inner_text() == "Shot 2"
    assert "Nobody expected the purple elephant." in panel.locator(".cues").inner_text()
    similar = panel.locator(".hit")
    assert 1 <= similar.count() <= 3 and "2" not in similar.evaluate_all("hits => hits.map(h => h.dataset.shot)")
    page.wait_for_function(ALL_DECODED)
    page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 6.0) < 0.1")
    assert page.url.endswith("#shot-2")
    page.screenshot(path=tmp_path / "shot-panel.png", full_page=True)

    # A similar shot's link opens that shot's panel; the timeline, clicked near its start, opens shot 0.
    first_similar = similar.first.get_attribute("data-shot")
    similar.first.locator("a").first.click()
    page.locator(f"#panel .shot-panel[data-shot='{first_similar}']").wait_for()
    page.locator("img.timeline").click(position={"x": 20, "y": 40})
    page.locator("#panel .shot-panel[data-shot='0']").wait_for()


def test_a_dialogue_search_finds_the_shot_where_it_is_said(served: dict[str, Any], page: Any, tmp_path: Path) -> None:
    page.goto("/")
    page.fill("header input[name=q]", "purple elephant")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/find?q=purple+elephant")
    first = page.locator(".hit").first
    assert (first.get_attribute("data-asset"), first.get_attribute("data-shot")) == (served["asset"], "2")
    assert first.locator(".cue").inner_text() == "Nobody expected the purple elephant."
    page.wait_for_function(ALL_DECODED)
    page.screenshot(path=tmp_path / "dialogue-search.png", full_page=True)


def test_an_uploaded_frame_finds_its_shot(served: dict[str, Any], page: Any, tmp_path: Path) -> None:
    picture = tmp_path / "frame.jpg"
    picture.write_bytes(query_frame(served["clip"], (1.001 + 6.006) / 2))
    page.goto("/find")
    page.set_input_files("input[name=image]", picture)
    page.click("form.image button")
    page.wait_for_selector(".hit")
    first = page.locator(".hit").first
    assert (first.get_attribute("data-asset"), first.get_attribute("data-shot")) == (served["asset"], "1")
    page.screenshot(path=tmp_path / "image-search.png", full_page=True)


def test_a_features_page_shows_its_versions_and_how_many_assets_have_it(page: Any, tmp_path: Path) -> None:
    page.goto("/feature/thumbnails")
    row = page.locator("table.versions tbody tr")
    assert row.count() == 1 and row.locator("td").first.inner_text() == "1"
    assert row.locator("td").nth(4).inner_text() == "1 of 1"
    assert page.locator("h2", has_text="Failures").inner_text().endswith("0")
    page.screenshot(path=tmp_path / "feature.png", full_page=True)


def test_the_player_seeks_by_range_requests_and_pages_are_guarded_as_reads(
    served: dict[str, Any], context: Any
) -> None:
    video = context.request.get(f"/title/{served['asset']}/video.mp4", headers={"Range": "bytes=0-99"})
    assert (video.status, video.headers["content-range"].split("/")[0], len(video.body())) == (206, "bytes 0-99", 100)
    mesh: Mesh = served["mesh"]
    # Without `with`: the app's shutdown would close the module's mesh.
    guarded = TestClient(create_app(lambda: mesh, ApiSettings(token=TOKEN)))
    away = guarded.get(f"/title/{served['asset']}?x=1", follow_redirects=False)
    assert (away.status_code, away.headers["location"]) == (303, f"/login?next=%2Ftitle%2F{served['asset']}%3Fx%3D1")
    assert guarded.get(f"/title/{served['asset']}/sprite.jpg", follow_redirects=False).status_code == 303
    wrong = guarded.post("/login", data={"token": "nope", "next": "/"}, follow_redirects=False)
    assert wrong.status_code == 403 and "That is not the token." in wrong.text
    offsite = guarded.post("/login", data={"token": TOKEN, "next": "//evil.example"}, follow_redirects=False)
    assert (offsite.status_code, offsite.headers["location"]) == (303, "/")
    assert guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    public = TestClient(create_app(lambda: mesh, ApiSettings(open_reads=True)))
    assert public.get("/").status_code == 200 and "testvideo.mp4" in public.get("/").text
    assert public.get(f"/title/{served['asset']}/tile/0.jpg").headers["content-type"] == "image/jpeg"
