"""examples/brightness-plugin, installed as a user installs it, joins the registry of the real ``mediamesh``.

It is installed into a folder of its own that only the CLI subprocesses see: installed into the test
environment, its entry point would change the registry of every later test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import MEDIAFM, default_registry
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings

ROOT = Path(__file__).resolve().parents[1]
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
_REGISTRY = default_registry()
BUILTIN = [n for n in _REGISTRY if MEDIAFM not in _REGISTRY.roots_of(n) and not _REGISTRY[n].on_demand]


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding the installed example (built from a copy, so the build leaves nothing in the tree)."""
    source = shutil.copytree(ROOT / "examples" / "brightness-plugin", tmp_path / "brightness-plugin")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", target, source],
        check=True,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return target


def test_the_installed_example_is_listed_and_computed_on_ingest(
    plugin_path: Path, database_url: str, prefect_api: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(plugin_path),
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "COLUMNS": "200",
    }
    env.pop("MEDIAMESH_FEATURES", None)

    def mediamesh(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        assert (done.returncode, "Traceback" in done.stderr) == (0, False), done.stderr
        return done

    listed = mediamesh("features").stdout
    assert "brightness" in listed
    assert all(name in listed for name in _REGISTRY)

    [ingested] = json.loads(mediamesh("ingest", str(ROOT / "tests" / "data" / "counter.mp4"), "--json").stdout)
    assert (ingested["computed"], ingested["errors"]) == (len(BUILTIN) + 1, [])
    luma = json.loads(mediamesh("read", ingested["asset"], "brightness", "--json").stdout)["luma"]
    assert luma and all(0 < value < 255 for value in luma)  # one per shot of a clip neither black nor white

    # A second shell without the plugin reads its value from the store's catalogue, and so does the API.
    del env["PYTHONPATH"]
    assert "brightness" not in mediamesh("features").stdout
    assert json.loads(mediamesh("read", ingested["asset"], "brightness", "--json").stdout)["luma"] == luma
    settings = StoreSettings(home=tmp_path / "home", database_url=database_url)
    with (
        Mesh.open(default_registry(), settings) as reader,
        TestClient(create_app(lambda: reader, ApiSettings(token="t"))) as http,
    ):
        answer = http.get(f"/assets/{ingested['asset']}/features/brightness", headers={"Authorization": "Bearer t"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"]["luma"] == luma
