"""Plugins compose: the built-ins, configured modules and installed distributions make one registry, checked whole."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mediamesh.features import (
    DefinitionError,
    DuplicateFeatureError,
    EncodedMedia,
    Registry,
    ShotTable,
    UnknownInputError,
    default_registry,
    feature,
)
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh, configured_registry
from mediamesh.store import StoreSettings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
RESOURCES = "tests.orchestrator.resources"
BUILTIN = frozenset(default_registry())


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEDIAMESH_FEATURES", raising=False)
    monkeypatch.setenv("MEDIAMESH_CONFIG", str(tmp_path / "no-config.toml"))


@feature(version="2", replaces=True)
def shots(encode: EncodedMedia) -> ShotTable:
    """The whole encode as one shot."""
    return ShotTable.from_frames(encode.fps, [(0, encode.frame_count)])


@feature(version="1", replaces=True, name="shot")
def shot_typo(encode: EncodedMedia) -> ShotTable:
    """A replacement whose name matches nothing."""
    return ShotTable.from_frames(encode.fps, [(0, encode.frame_count)])


def test_a_configured_module_reads_builtin_features_and_another_plugins_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIAMESH_FEATURES", f"builtin,{RESOURCES}.plugin_readers,{RESOURCES}.plugin_features")
    registry = configured_registry()
    assert set(registry) == {*BUILTIN, "encoded_frames", "frames_doubled"}
    assert registry.closure(["frames_doubled"]) == ("encode", "encoded_frames", "frames_doubled")


def test_the_config_file_names_modules_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "mediamesh.toml"
    config.write_text(f'[features]\nmodules = ["builtin", "{RESOURCES}.plugin_features"]\n')
    monkeypatch.setenv("MEDIAMESH_CONFIG", str(config))
    assert set(configured_registry()) == {*BUILTIN, "encoded_frames"}
    monkeypatch.setenv("MEDIAMESH_FEATURES", "builtin")
    assert set(configured_registry()) == BUILTIN
    config.write_text('[features]\nmodules = "builtin"\n')
    monkeypatch.delenv("MEDIAMESH_FEATURES")
    with pytest.raises(DefinitionError, match=r"mediamesh\.toml: \[features\] modules must be a list"):
        configured_registry()


def test_a_same_named_feature_replaces_a_builtin_only_when_it_says_so() -> None:
    with pytest.raises(
        DuplicateFeatureError,
        match=r"'shots' is defined twice: in mediamesh\.features\.shots\.shots and in "
        r"tests\.orchestrator\.resources\.clashing_features\.shots; declare the later one .*replaces=True",
    ):
        configured_registry(f"builtin,{RESOURCES}.clashing_features")

    builtin = list(default_registry().values())
    registry = Registry.compose([builtin, [shots]])
    assert registry["shots"].ref == "shots@2"
    assert registry["shots"].fn is shots
    assert "dedup" in registry.dependents("shots")  # the built-ins now read the replacement
    with pytest.raises(DefinitionError, match=r"shot@1 \(.*test_plugins\.shot_typo\) is declared replaces=True, but "):
        Registry.compose([builtin, [shot_typo]])
    with pytest.raises(DuplicateFeatureError, match=r"'shots' is defined twice"):
        Registry.compose([[*builtin, shots]])  # one source cannot define a name twice, replaces or not


def test_errors_name_the_module_a_feature_came_from() -> None:
    with pytest.raises(
        UnknownInputError,
        match=r"frames_doubled@1 \(tests\.orchestrator\.resources\.plugin_readers\.frames_doubled\) reads input "
        r"'encoded_frames', which no feature produces",
    ):
        configured_registry(f"builtin,{RESOURCES}.plugin_readers")
    with pytest.raises(DefinitionError, match=r"^MEDIAMESH_FEATURES names 'no_such_plugin', which cannot be imported"):
        configured_registry("builtin,no_such_plugin")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A distribution on sys.path that declares a ``mediamesh.features`` entry point; its module's name."""
    module = f"mm_plugin_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    (site / f"{module}-0.1.dist-info").mkdir(parents=True)
    (site / f"{module}-0.1.dist-info" / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (site / f"{module}-0.1.dist-info" / "entry_points.txt").write_text(f"[mediamesh.features]\nseconds = {module}\n")
    (site / f"{module}.py").write_text(
        "from mediamesh.features import EncodedMedia, feature\n"
        "from tests.orchestrator.resources.counting_features import Number\n\n\n"
        "@feature(version='1')\n"
        "def seconds_per_frame(encode: EncodedMedia, encoded_frames: Number) -> Number:\n"
        "    '''Whole seconds of the encode per thousand frames.'''\n"
        "    return Number(int(encode.duration * 1000) // max(encoded_frames.value, 1))\n"
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        yield module
    finally:
        sys.modules.pop(module, None)


def test_installed_distributions_join_the_registry_beside_configured_modules(installed: str) -> None:
    registry = configured_registry(f"builtin,{RESOURCES}.plugin_features")
    assert set(registry) == {*BUILTIN, "encoded_frames", "seconds_per_frame"}
    assert registry["seconds_per_frame"].fn.__module__ == installed
    with pytest.raises(
        UnknownInputError, match=rf"^feature seconds_per_frame@1 \({installed}\.seconds_per_frame\) reads input"
    ):
        configured_registry("builtin")  # the plugin reads a feature no configured module provides


def test_the_api_and_the_cli_use_the_composed_registry(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    features = f"builtin,{RESOURCES}.plugin_features"
    env = {
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_FEATURES": features,
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = StoreSettings()
    with Mesh.open(settings=settings) as mesh:
        asset, _ = mesh.store.register_asset(DATA / "counter.mp4", name="counter.mp4")
    app = create_app(lambda: Mesh.open(settings=settings), ApiSettings(token="t0ken"), store_settings=settings)
    with TestClient(app) as client:
        answer = client.get(f"/assets/{asset.id}/status", headers={"Authorization": "Bearer t0ken"})
    assert answer.status_code == 200, answer.text
    states = {s["feature"]: (s["state"], s["detail"]) for s in answer.json()["features"]}
    # A newly registered feature is planned for every asset: here it waits for a backfill.
    assert states["encoded_frames"] == ("missing", "run `mediamesh backfill encoded_frames`")

    listed = subprocess.run(
        [MEDIAMESH, "features"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0, listed.stderr
    assert "encoded_frames" in listed.stdout
    assert all(name in listed.stdout for name in BUILTIN)
