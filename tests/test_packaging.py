"""The distribution: one import root, ``mediamesh``, that folders in the user's working directory cannot shadow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.orchestrator.test_cli import decoy_packages

ROOT = Path(__file__).parents[1]


def test_the_wheel_installs_only_mediamesh_with_its_data_and_py_typed(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and egg-info beside the sources, which the suite is using.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "mediamesh", "features", "orchestrator", "store"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheel_args = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run([sys.executable, "-m", "pip", *wheel_args], check=True, capture_output=True, cwd=source)
    [wheel] = tmp_path.glob("mediamesh-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    [top_level] = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["mediamesh"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"mediamesh"}
    for expected in (
        "mediamesh/py.typed",
        "mediamesh/__init__.py",
        "mediamesh/features/spec.py",
        "mediamesh/orchestrator/interfaces/cli/__init__.py",
        "mediamesh/store/migrations/env.py",
        "mediamesh/orchestrator/samples/testvideo.mp4",
    ):
        assert expected in names, expected
    entry_points = zipfile.ZipFile(wheel).read(top_level.replace("top_level.txt", "entry_points.txt")).decode()
    assert "mediamesh = mediamesh.orchestrator.interfaces.cli:main" in entry_points


def test_folders_named_like_the_rooms_in_the_working_directory_change_nothing(tmp_path: Path) -> None:
    work = decoy_packages(tmp_path / "work")
    env = {**os.environ, "PYTHONPATH": str(work), "MEDIAMESH_HOME": str(tmp_path / "home")}
    code = "import mediamesh, mediamesh.features, mediamesh.store, mediamesh.orchestrator; print(mediamesh.Mesh)"
    imported = subprocess.run([sys.executable, "-c", code], env=env, cwd=work, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert "mediamesh.orchestrator.mesh.Mesh" in imported.stdout
    info = subprocess.run(
        [str(Path(sys.executable).parent / "mediamesh"), "info", "--json"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert info.returncode == 0, info.stderr
    assert "decoy" not in info.stderr
