"""What the read-only commands import: opening an up-to-date store needs neither Alembic nor the S3 SDK.

``mediamesh status`` / ``read`` / ``features`` / ``info`` import the whole CLI; the heavy libraries load only where
they are used (migrations, an S3 blob store, a model, a picture). The head migration is read from the migration
files, which must give Alembic's answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from mediamesh.store import database

# Never imported by `import mediamesh.orchestrator.interfaces.cli.app` (a fresh process, no mocks).
HEAVY = ("alembic", "mako", "minio", "torch", "transformers", "prefect", "cv2", "PIL")


def _imported_by(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_cli_imports_none_of_the_heavy_libraries() -> None:
    loaded = _imported_by("import mediamesh.orchestrator.interfaces.cli.app")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_building_the_registry_imports_no_media_library() -> None:
    # Every CLI process builds the registry; decoding, OpenCV, subtitles and Pillow load where a feature runs.
    media = {"av", "cv2", "scenedetect", "pysubs2", "charset_normalizer", "ffmpeg", "PIL"}
    loaded = _imported_by("import mediamesh.features; mediamesh.features.default_registry()")
    assert not loaded & (media | set(HEAVY)), sorted(loaded & (media | set(HEAVY)))


def test_the_store_imports_neither_alembic_nor_the_s3_sdk() -> None:
    loaded = _imported_by("import mediamesh.store, mediamesh.store.landing") & {"alembic", "mako", "minio", "urllib3"}
    assert not loaded, sorted(loaded)


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    script = ScriptDirectory(str(database._MIGRATIONS))
    walked = tuple(r.revision for r in script.walk_revisions())
    assert database._read_revisions(database._MIGRATIONS / "versions") == walked
    assert database._revisions() == walked
    assert database.head_revision() == script.get_current_head()


def _write(folder: Path, name: str, revision: str, down: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        f'"""A migration."""\n\nimport sqlalchemy as sa\n\nrevision = "{revision}"\ndown_revision = {down}\n'
    )


def test_typed_headers_in_any_file_order_read_as_one_line(tmp_path: Path) -> None:
    _write(tmp_path, "b.py", "0002", '"0001"  # the first')
    (tmp_path / "a.py").write_text('revision: str = "0001"\ndown_revision: str | None = None\n')
    _write(tmp_path, "c.py", "0003", "'0002'")
    assert database._read_revisions(tmp_path) == ("0003", "0002", "0001")


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param({"a.py": ("0001", "None"), "b.py": ("0002", '"0001"'), "c.py": ("0003", '"0001"')}, id="branch"),
        pytest.param(
            {"a.py": ("0001", "None"), "b.py": ("0002", '"0001"'), "c.py": ("0003", '("0001", "0002")')}, id="merge"
        ),
        pytest.param({"a.py": ("0001", "None"), "b.py": ("0002", '"0009"')}, id="unknown parent"),
        pytest.param({"a.py": ("0001", "None"), "b.py": ("0001", "None")}, id="one revision twice"),
        pytest.param({"a.py": ("0001", '"0002"'), "b.py": ("0002", '"0001"')}, id="a cycle"),
        pytest.param({}, id="none"),
    ],
)
def test_anything_but_one_straight_line_is_left_to_alembic(tmp_path: Path, layout: dict[str, tuple[str, str]]) -> None:
    for name, (revision, down) in layout.items():
        _write(tmp_path, name, revision, down)
    assert database._read_revisions(tmp_path) is None


def test_a_file_without_a_readable_header_is_left_to_alembic(tmp_path: Path) -> None:
    _write(tmp_path, "a.py", "0001", "None")
    (tmp_path / "b.py").write_text('REVISION = "0002"\nrevision = REVISION\ndown_revision = "0001"\n')
    assert database._read_revisions(tmp_path) is None


def test_the_cli_flavours_are_the_match_cut_flavours() -> None:
    from mediamesh.orchestrator.interfaces import matchcuts
    from mediamesh.orchestrator.interfaces.cli import matchcuts as command

    assert [f.value for f in command.Flavour] == [f.value for f in matchcuts.Flavour]
