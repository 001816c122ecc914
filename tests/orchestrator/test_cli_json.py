"""Every command's ``--help`` renders, and the commands that print data print it as JSON with ``--json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.store import StoreSettings, open_store
from tests.orchestrator.test_cli import mediamesh

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
PRINTS_DATA = {
    "ingest",
    "status",
    "read",
    "features",
    "backfill",
    "promote",
    "train",
    "eval",
    "info",
    "gc",
    "verify",
    "matchcuts",
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_renders(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.exception
    assert f"Usage: mediamesh {command}" in result.output
    assert ("--json" in result.output) == (command in PRINTS_DATA)


def test_shell_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--install-completion" in result.output and "--show-completion" in result.output


def test_status_backfill_promote_and_info_print_json(database_url: str, prefect_api: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "MEDIAMESH_FEATURES": "tests.orchestrator.resources.counting_features",
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDIAMESH_ENCODERS": "lite",
        "COLUMNS": "200",
    }
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"twelve bytes")
    with open_store(StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=database_url)) as store:
        asset, _ = store.register_asset(clip, name="clip")

    status = mediamesh(env, "status", asset.id[0], "--json")  # one character is a prefix too
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert (shown["asset"], shown["names"]) == (asset.id, ["clip"])
    assert {f["feature"]: f["state"] for f in shown["features"]}["size"] == "missing"

    backfill = mediamesh(env, "backfill", "size", "--assets", "clip", "--json")
    assert backfill.returncode == 0, backfill.stderr
    report = json.loads(backfill.stdout)
    assert (report["feature"], report["computed"], report["failed"]) == ("size@1", 1, 0)
    assert report["assets"] == [{"asset": asset.id, "computed": 1, "reused": 0, "failed": 0, "queued": 0, "errors": []}]

    promote = mediamesh(env, "promote", "size@1", "--json")
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout) == {"feature": "size", "version": "1", "assets_with_it": 1, "assets": 1}

    info = mediamesh(env, "info", "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["home"] == str((tmp_path / "home").resolve())
    assert described["object_store"] == (tmp_path / "home" / "blobs").resolve().as_uri()
    assert described["prefect_api"] == prefect_api and "video" in described["encoders"]
