"""MediaFM through the CLI on a small real catalogue: train, promote, compute contextual, evaluate."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from mediamesh.features import ShotTable
from mediamesh.features.mediafm import TrainOptions
from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.store import StoreSettings, hash_file, open_store

DATA = Path(__file__).parents[1] / "data"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")


def test_train_promote_backfill_read_and_evaluate(database_url: str, prefect_api: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "COLUMNS": "200",
    }

    def mediamesh(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=600)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    clips = []
    for name in ("counter.mp4", "bigbuckbunny.mp4", "issue-195-aspect-ratio.mp4"):
        clips.append(tmp_path / name)
        shutil.copyfile(DATA / name, clips[-1])
    (tmp_path / "bigbuckbunny.json").write_text('{"title": "Big Buck Bunny", "synopsis": "A rabbit gets even."}')
    assert mediamesh("ingest", *map(str, clips)).returncode == 0

    waiting = mediamesh("status", str(clips[1]))
    assert re.search(r"contextual@2\s+.*waiting", waiting.stdout)
    no_checkpoint = mediamesh("backfill", "contextual")
    assert no_checkpoint.returncode == 1
    assert "no MediaFM checkpoint is promoted" in no_checkpoint.stderr

    trained = mediamesh("train", "mediafm", "--config", "small", "--steps", "8")
    assert trained.returncode == 0, trained.stderr
    checkpoint = re.search(r"checkpoint ([0-9a-f]{64})", trained.stdout)
    assert checkpoint is not None
    assert "8 steps on 2 title(s), 1 held out" in trained.stdout

    assert mediamesh("promote", "mediafm", checkpoint.group(1)[:12]).returncode == 0
    backfill = mediamesh("backfill", "contextual")
    assert backfill.returncode == 0, backfill.stderr
    assert "contextual@2: computed 3" in backfill.stdout

    settings = StoreSettings(home=tmp_path / "home", database_url=database_url)
    with open_store(settings) as store:  # the shot counts, as stored (test_cli.py reads shots through the CLI)
        shots = {clip: len(store.load(store.values_for(hash_file(clip), "shots")[0], ShotTable)) for clip in clips}
    for clip in clips:
        out = tmp_path / f"{clip.stem}.contextual.npy"
        assert mediamesh("read", str(clip), "contextual", "--out", str(out)).returncode == 0
        array = np.load(out)
        assert array.shape == (shots[clip], 128)  # the small config's hidden size
        assert np.isfinite(array).all()

    evaluation = mediamesh("eval")
    assert evaluation.returncode == 0, evaluation.stderr
    assert "mediafm" in evaluation.stdout
    assert "neighbour average" in evaluation.stdout

    labels = tmp_path / "labels.csv"
    aspect = hash_file(clips[2])
    labels.write_text(
        "asset,shot,label\n"
        + "".join(f"{aspect},{i},{'dark' if i % 2 else 'bright'}\n" for i in range(6))
        + f"{clips[0]},0-3,bright\n{clips[1]},0,dark\n"
    )
    probe = mediamesh("eval", "--labels", str(labels))
    assert probe.returncode == 0, probe.stderr
    for representation in ("video_embedding", "audio_embedding", "text_embedding", "fused", "contextual"):
        assert representation in probe.stdout


def test_the_train_options_are_the_training_options_dataclass() -> None:
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    params = {param.name: param for param in command.params}
    for field in fields(TrainOptions):
        param = params[field.name]
        assert param.opts == [f"--{field.name.replace('_', '-')}"]
        assert (param.default, param.help) == (field.default, field.metadata["help"])
    runner = CliRunner()

    def refusal(*args: str) -> str:
        result = runner.invoke(app, ["train", "mediafm", *args])
        assert result.exit_code == 2
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # the words, without Rich's box

    assert "at most one of steps and epochs, got steps=2, epochs=1" in refusal("--steps", "2", "--epochs", "1")
    assert "'sgd' is not one of 'muon', 'adamw'" in refusal("--optimizer", "sgd")
