"""``mediamesh status`` and ``read --json`` from the catalogue alone (``cli/quick.py``) say what the full path says.

One home with its embedded Postgres held up by a holder process, as a user's is while another command runs.
Which path a command took shows in what it imported (``PYTHONPROFILEIMPORTTIME``): the catalogue read never
imports SQLAlchemy. A changed feature, a stopped server or a home without a manifest take the full path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediamesh.orchestrator.execution.manifest import MANIFEST
from tests.orchestrator.test_cli import mediamesh

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys; from mediamesh.store import open_store; store = open_store(); "
    "print('ready', flush=True); sys.stdin.read(); store.close()"
)


def environment(tmp_path: Path, prefect_api: str) -> dict[str, str]:
    """A home of its own, with the test's features in a plugin folder."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    shutil.copy(ROOT / "tests" / "orchestrator" / "resources" / "quick_features.py", plugin / "quick_features.py")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_API_URL"))},
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_FEATURES": "quick_features",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)]),
        "PREFECT_API_URL": prefect_api,
        "COLUMNS": "200",
    }


@pytest.fixture
def home_env(tmp_path: Path, prefect_api: str) -> Iterator[dict[str, str]]:
    """The home's embedded server kept running by a holder, as while another command runs."""
    env = environment(tmp_path, prefect_api)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield env
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=60)


def run(env: dict[str, str], *args: str) -> tuple[str, bool]:
    """The command's output, and whether it took the catalogue read (imported no SQLAlchemy)."""
    done = mediamesh({**env, "PYTHONPROFILEIMPORTTIME": "1"}, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import")}
    return done.stdout, "sqlalchemy" not in imported


def full(env: dict[str, str], *args: str) -> str:
    """The command through the full path (no manifest), which leaves the manifest for the next call."""
    (Path(env["MEDIAMESH_HOME"]) / MANIFEST).unlink(missing_ok=True)
    output, quick = run(env, *args)
    assert not quick
    return output


def test_status_and_read_say_what_the_full_path_says(home_env: dict[str, str], tmp_path: Path) -> None:
    env = home_env
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"forty-two bytes of something that is a clip")
    subs = tmp_path / "clip.en.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello.\n")
    ingest = mediamesh(env, "ingest", str(clip), "--subtitles", str(subs), "--json")
    assert "cannot be cut" in ingest.stdout, ingest.stdout + ingest.stderr  # broken failed; the rest stored
    name = str(clip)  # the name it was ingested under

    for args in (("status", name, "--json"), ("status", name), ("read", name, "cuts", "--json")):
        expected = full(env, *args)
        answer, quick = run(env, *args)
        assert quick, args
        assert answer == expected, args
    states = {f["feature"]: f["state"] for f in json.loads(run(env, "status", name, "--json")[0])["features"]}
    assert states == {
        "cuts": "stored",
        "cut_count": "stored",
        "broken": "failed",
        "contextual_cuts": "waiting",
    }
    shots = json.loads(run(env, "read", name, "cuts", "--json")[0])
    size = len(clip.read_bytes())
    assert [s["end_frame"] for s in shots] == [size // 2, size]

    # Pinned versions, a prefix for the asset, and a second shot table: still the catalogue read.
    asset = json.loads(run(env, "status", name, "--json")[0])["asset"]
    for args in (("read", asset[:6], "cuts@1", "--json"), ("read", name, "cut_count", "--json", "--version", "1")):
        answer, quick = run(env, *args)
        assert quick and json.loads(answer) == shots, args

    # A new version in the feature's file: the manifest is stale, and the full path answers (cuts@2 is missing).
    module = Path(env["PYTHONPATH"].split(os.pathsep)[0]) / "quick_features.py"
    module.write_text(module.read_text().replace('@feature(version="1")\ndef cuts', '@feature(version="2")\ndef cuts'))
    answer, quick = run(env, "status", name, "--json")
    assert not quick
    changed = {(f["feature"], f["version"]): f["state"] for f in json.loads(answer)["features"]}
    assert changed[("cuts", "2")] == "missing" and changed[("cuts", "1")] == "stored"
    again, quick = run(env, "status", name, "--json")
    assert quick and again == answer

    # What the catalogue read does not render, and what it cannot resolve, go the full way.
    assert not run(env, "read", name, "cuts")[1]  # a record's description, not the value
    missing = mediamesh(env, "status", "no-such-clip", "--json")
    assert missing.returncode == 1 and "no asset matches 'no-such-clip'" in missing.stderr


def test_without_a_running_server_the_full_path_starts_one(tmp_path: Path, prefect_api: str) -> None:
    env = environment(tmp_path, prefect_api)
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"twelve bytes")
    mediamesh(env, "ingest", str(clip), "--json")
    first, quick = run(env, "status", str(clip), "--json")  # the server stopped with the ingest; this one starts it
    assert not quick and (Path(env["MEDIAMESH_HOME"]) / MANIFEST).is_file()
    second, quick = run(env, "status", str(clip), "--json")  # and it stopped again: a manifest is not enough
    assert not quick and second == first
