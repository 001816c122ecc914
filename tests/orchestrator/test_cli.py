"""The ``mediamesh`` command line, run as a user runs it: a subprocess, real clips, real services."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import sqlalchemy as sa

from mediamesh.features import MEDIAFM, TitleMetadata, default_registry
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.subtitles import embedded_text_streams
from mediamesh.store import Store, StoreSettings, hash_file, open_store
from tests.postgres import fresh_roles_database

DATA = Path(__file__).parents[1] / "data"
SAMPLES = Path(__file__).parents[2] / "orchestrator" / "samples"
MEDIAMESH = str(Path(sys.executable).parent / "mediamesh")
_REGISTRY = default_registry()
# Every built-in feature is computed for a good input, except those waiting for a MediaFM checkpoint and those
# computed on demand (match cutting's).
FEATURES = len([n for n in _REGISTRY if MEDIAFM not in _REGISTRY.roots_of(n) and not _REGISTRY[n].on_demand])


@pytest.fixture
def env(database_url: str, tmp_path: Path, prefect_api: str) -> dict[str, str]:
    """The environment of a user whose store is a fresh database and a fresh home."""
    return {
        **os.environ,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "PREFECT_API_URL": prefect_api,
        "TMPDIR": str(_scratch(tmp_path)),
        "COLUMNS": "200",
        # Model-free encoders keep these tests fast; tests/orchestrator/test_pipeline.py runs real models.
        "MEDIAMESH_ENCODERS": "lite",
        "MEDIAMESH_DEVICE": "cpu",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
    }


def _scratch(tmp_path: Path) -> Path:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return scratch


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    settings = StoreSettings(home=Path(env["MEDIAMESH_HOME"]), database_url=env["MEDIAMESH_DATABASE_URL"])
    with open_store(settings) as opened:
        yield opened


def mediamesh(
    env: dict[str, str], *args: str, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIAMESH, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd
    )


def decoy_packages(folder: Path) -> Path:
    """A working directory holding folders named like mediamesh's rooms, each failing loudly if imported."""
    for name in ("features", "orchestrator", "store"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('the decoy {name}/ was imported')\n")
    return folder


def _copy(name: str, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / name, to)
    return to


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def test_bad_inputs_fail_alone_with_one_line_errors_and_nothing_partial(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.mp4").write_bytes(b"")
    (inputs / "truncated.mp4").write_bytes((DATA / "testvideo.mp4").read_bytes()[:900_000])
    (inputs / "notes.mp4").write_text("these are not frames\n")
    _ffmpeg("-i", DATA / "counter.mp4", "-frames:v", "1", "-vf", "scale=160:90", inputs / "still.png")
    _ffmpeg("-i", DATA / "counter.mp4", "-frames:v", "1", "-vf", "scale=160:90", inputs / "photo.jpg")
    (inputs / "photo.jpg").rename(inputs / "photo.mp4")  # a JPEG that says it is a video
    _ffmpeg("-i", DATA / "bigbuckbunny.mp4", "-vn", "-c", "copy", inputs / "sound.m4a")
    good = _copy("counter.mp4", inputs / "good.mp4")
    names = ["empty.mp4", "truncated.mp4", "notes.mp4", "still.png", "photo.mp4", "sound.m4a", "missing.mp4"]
    for name in [*names[:-1], "good.mp4"]:  # title metadata, which alone would make title_embedding computable
        (inputs / name).with_suffix(".json").write_text(json.dumps({"title": f"The {name}", "synopsis": "A film."}))

    result = mediamesh(env, "ingest", *(str(inputs / name) for name in names), str(good), "--json")

    assert result.returncode == 1
    entries = {Path(e["path"]).name: e for e in _json(result)}
    assert list(entries) == [*names, "good.mp4"]
    assert entries["good.mp4"]["computed"] == FEATURES
    assert entries["good.mp4"]["errors"] == []
    assert {r.feature for r in store.values_for(entries["good.mp4"]["asset"])} >= {"encode", "title_embedding"}
    expected = {
        "empty.mp4": r"is empty \(0 bytes\)",
        "truncated.mp4": "cannot decode .*: invalid data found when processing input",
        "notes.mp4": "cannot decode .*: invalid data found when processing input",
        "still.png": r"^'.*still\.png' is a still image, not a video \[encode@1, asset [0-9a-f]{12}\]$",
        "photo.mp4": r"^'.*photo\.mp4' is a still image, not a video \[encode@1, asset [0-9a-f]{12}\]$",
        "sound.m4a": r"^'.*sound\.m4a' has no video stream \[encode@1, asset [0-9a-f]{12}\]$",
        "missing.mp4": "no such file",
    }
    for name, pattern in expected.items():
        [message] = entries[name]["errors"]
        assert str(inputs / name) in message
        assert "\n" not in message
        assert (entries[name]["computed"], entries[name]["reused"]) == (0, 0)
        assert re.search(pattern, message), message
    assert entries["missing.mp4"]["asset"] is None
    # Nothing is stored for bad media, not even what reads only its title; the asset, its name, its title
    # metadata and the error are kept.
    for name in names[:-1]:
        asset = entries[name]["asset"]
        assert entries[name]["failed"] == 1
        assert store.values_for(asset) == []
        assert [a.feature for a in store.attempts_for(asset)] == ["encode"]
        assert store.asset(asset).names == (str((inputs / name).resolve()),)
        assert store.title_metadata(asset) == TitleMetadata(f"The {name}", "A film.")
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {entries[n]['errors'][0]}" for n in expected
    ]
    assert list(_scratch(tmp_path).glob("mediamesh-*")) == []


EMPTY_ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, BackColour, Bold, Italic, Alignment, MarginL, MarginR, MarginV
Style: Default,Arial,20,&H00FFFFFF,&H00000000,0,0,2,10,10,10

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def test_a_split_mkv_whose_ass_tracks_hold_no_events_has_no_text(env: dict[str, str], tmp_path: Path) -> None:
    # What splitting a file leaves: ASS tracks whose script header survives but whose events do not.
    empty = tmp_path / "empty.ass"
    empty.write_text(EMPTY_ASS)
    split = tmp_path / "part2.mkv"
    tracks = ["-map", "0:v", "-map", "1", "-map", "2", "-c:v", "copy", "-c:s", "ass"]
    languages = ["-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fre"]
    _ffmpeg("-i", DATA / "counter.mp4", "-i", empty, "-i", empty, *tracks, *languages, split)
    assert embedded_text_streams(split) == [(1, "eng", "ass"), (2, "fre", "ass")]  # ffmpeg keeps empty tracks

    result = mediamesh(env, "ingest", str(split), "--json")

    assert result.returncode == 0, result.stderr
    [entry] = _json(result)
    assert (entry["computed"], entry["failed"], entry["errors"]) == (FEATURES, 0, [])
    timed = _json(mediamesh(env, "read", entry["asset"], "timed_text", "--json"))
    shots = _json(mediamesh(env, "read", entry["asset"], "shots", "--json"))
    assert (timed["origin"], timed["language"], timed["cues"]) == ("stream:1", "eng", [])
    assert timed["per_shot"] == [[] for _ in shots]
    out = tmp_path / "text.npy"
    assert mediamesh(env, "read", entry["asset"], "text_embedding", "--out", str(out)).returncode == 0
    text = np.load(out)
    assert text.shape[0] == len(shots) and not text.any()
    fused = tmp_path / "fused.npy"
    assert mediamesh(env, "read", entry["asset"], "fused", "--out", str(fused)).returncode == 0
    assert np.load(fused).shape[0] == len(shots)


def test_a_subtitle_cue_before_0_fails_the_text_features_with_its_real_time(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    clip = _copy("counter.mp4", tmp_path / "film.mp4")
    # pysubs2 reads this cue as starting at +1 s.
    (tmp_path / "film.srt").write_text("1\n-00:00:01,000 --> 00:00:02,000\nToo early\n")

    result = mediamesh(env, "ingest", str(clip), "--json")

    assert result.returncode == 1
    [entry] = _json(result)
    [message] = entry["errors"]
    assert re.fullmatch(
        r".*film\.mp4: cannot parse subtitles 'film\.srt': cue 1 starts before 0 \(-1\.000 s, ending at 2\.000 s\) "
        r"\[timed_text@1, asset [0-9a-f]{12}\]",
        message,
    ), message
    assert (entry["computed"], entry["failed"]) == (FEATURES - 3, 1)  # timed_text, text_embedding and fused
    stored = {r.feature for r in store.values_for(entry["asset"])}
    assert not stored & {"timed_text", "text_embedding", "fused"}


def test_same_bytes_under_another_name_compute_nothing(env: dict[str, str], store: Store, tmp_path: Path) -> None:
    first = _copy("counter.mp4", tmp_path / "a" / "counter.mp4")
    renamed = _copy("counter.mp4", tmp_path / "b" / "renamed.mp4")
    [one] = _json(mediamesh(env, "ingest", str(first), "--json"))
    again = mediamesh(env, "ingest", str(renamed), "--json")
    [two] = _json(again)
    assert again.returncode == 0
    assert (one["computed"], one["reused"]) == (FEATURES, 0)
    assert (two["asset"], two["computed"], two["reused"], two["failed"]) == (one["asset"], 0, FEATURES, 0)
    assert store.asset(one["asset"]).names == (str(first.resolve()), str(renamed.resolve()))


def test_status_read_features_and_info(env: dict[str, str], store: Store, tmp_path: Path) -> None:
    clip = _copy("issue-195-aspect-ratio.mp4", tmp_path / "aspect.mp4")
    assert mediamesh(env, "ingest", str(clip)).returncode == 0
    asset = hash_file(clip)

    status = mediamesh(env, "status", asset[:10])
    assert status.returncode == 0, status.stderr
    assert "encode@1" in status.stdout
    assert status.stdout.count("stored") == FEATURES

    shots = _json(mediamesh(env, "read", str(clip), "shots", "--json"))
    assert [round(s["start_time"], 3) for s in shots] == [0.0, 2.792, 6.792, 12.042, 16.833, 19.375]
    keys = {
        "index",
        "start_frame",
        "end_frame",
        "start_time",
        "end_time",
        "transition",
        "transition_start",
        "transition_end",
    }
    assert all(set(s) == keys for s in shots)
    assert all(a["end_frame"] == b["start_frame"] for a, b in itertools.pairwise(shots))

    out = tmp_path / "encode.mp4"
    read = mediamesh(env, "read", asset, "encode", "--out", str(out), "--version", "1")
    assert read.returncode == 0, read.stderr
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert video.codec_context.name == "h264"

    missing = mediamesh(env, "read", asset, "shots", "--version", "9")
    assert missing.returncode == 1
    assert "has no stored shots@9" in missing.stderr
    assert "Traceback" not in missing.stderr
    typo = mediamesh(env, "read", asset, "shot")
    assert typo.returncode == 1
    assert "Did you mean 'shots'?" in typo.stderr

    features = mediamesh(env, "features", "--check")
    assert features.returncode == 0, features.stderr
    assert "matches" in features.stdout
    with store.engine.begin() as conn:  # as if shots@2 had been computed by different code
        conn.execute(
            sa.text(
                "INSERT INTO feature_versions (name, version, fingerprint, resources) VALUES ('shots', '2', :f, 'cpu')"
            ),
            {"f": "0" * 64},
        )
    changed = mediamesh(env, "features", "--check")
    assert changed.returncode == 1
    assert "code changed without a version bump: shots@2" in changed.stderr

    info = mediamesh(env, "info")
    assert info.returncode == 0
    assert env["PREFECT_API_URL"] in info.stdout
    assert f"file://{Path(env['MEDIAMESH_HOME']).resolve()}/blobs" in info.stdout


def test_killed_ingest_rerun_leaves_every_value_once_and_nothing_half_written(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    clips = [_copy(n, tmp_path / n) for n in ("testvideo.mp4", "issue-134-rotate.mp4", "bigbuckbunny.mp4")]
    proc = subprocess.Popen(
        [MEDIAMESH, "ingest", *map(str, clips)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with store.engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM feature_values")).scalar_one() >= 1:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with store.engine.connect() as conn:
        stored_before = conn.execute(sa.text("SELECT count(*) FROM feature_values")).scalar_one()
    assert 1 <= stored_before < 3 * FEATURES, "the kill should land midway"

    rerun = mediamesh(env, "ingest", *map(str, clips), "--json")
    entries = _json(rerun)
    assert rerun.returncode == 0
    assert sum(e["computed"] for e in entries) == 3 * FEATURES - stored_before
    with store.engine.connect() as conn:
        counts = conn.execute(sa.text("SELECT asset_id, feature, count(*) FROM feature_values GROUP BY 1, 2")).all()
    assert len(counts) == 3 * FEATURES
    assert all(n == 1 for _, _, n in counts)
    for asset in {a for a, _, _ in counts}:
        for record in store.values_for(asset):
            data = store.blobs.get_bytes(record.blob_key)
            assert len(data) == record.bytes
            assert hashlib.sha256(data).hexdigest() == record.checksum
    assert store.live_claims() == []
    orphans = store.gc()
    assert all(store.blobs.exists(r.blob_key) for a, _, _ in counts for r in store.values_for(a))
    assert len(orphans) <= 1  # at most the blob of the value whose row the kill prevented


def test_two_ingests_of_the_same_file_at_once_compute_each_value_once(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    clip = _copy("bigbuckbunny.mp4", tmp_path / "bbb.mp4")
    procs = [
        subprocess.Popen(
            [MEDIAMESH, "ingest", str(clip), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    entries = [json.loads(out)[0] for out, _ in outputs]
    assert sum(e["computed"] for e in entries) == FEATURES
    assert sum(e["reused"] for e in entries) == FEATURES
    assert len(store.values_for(entries[0]["asset"])) == FEATURES


def test_demo_runs_on_the_embedded_default(tmp_path: Path, prefect_api: str) -> None:
    # Run where folders named store/, features/ and orchestrator/ are importable: they must change nothing.
    work = decoy_packages(tmp_path / "work")
    env = {
        **os.environ,
        "PYTHONPATH": str(work),
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "PREFECT_API_URL": prefect_api,
        "COLUMNS": "200",
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDIAMESH_VIDEO_MODEL": str(tmp_path / "no-such-model"),  # as on a machine without pretrained weights
    }
    for name in ("MEDIAMESH_DATABASE_URL", "MEDIAMESH_ENCODERS"):
        env.pop(name, None)
    result = mediamesh(env, "demo", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "uses the lite encoder set" in result.stdout
    assert "testvideo.mp4" in result.stdout
    assert result.stdout.count(f"computed {FEATURES}, reused 0, failed 0") == 2
    assert "4 shot(s); cuts at 1.00s, 6.00s, 13.17s" in result.stdout  # testvideo.mp4's reference cuts, no other
    assert "fused tri-modal vectors: 4 x " in result.stdout
    assert (tmp_path / "home" / "pgdata").is_dir()
    # The fallback is kept for the home's later commands: status (as serve and read) sees what the demo computed.
    assert 'set = "lite"' in (tmp_path / "no-config.toml").read_text()
    status = mediamesh(env, "status", str(SAMPLES / "testvideo.mp4"), "--json", cwd=work)
    states = {s["feature"]: s["state"] for s in json.loads(status.stdout)["features"]}
    assert states["video_embedding"] == states["fused"] == "stored", states
    again = mediamesh(env, "demo", cwd=work)
    assert again.returncode == 0
    assert again.stdout.count(f"computed 0, reused {FEATURES}, failed 0") == 2


def test_migrate_runs_as_the_owner_and_every_other_command_as_the_application_role(
    postgres: str, tmp_path: Path
) -> None:
    with fresh_roles_database(postgres, migrated=False) as roles:
        env = {**os.environ, "MEDIAMESH_HOME": str(tmp_path / "home"), "MEDIAMESH_DATABASE_URL": roles.app_url}
        for name in ("PREFECT_API_URL", "MEDIAMESH_OWNER_DATABASE_URL", "MEDIAMESH_OBJECT_STORE"):
            env.pop(name, None)
        before = mediamesh(env, "status", "abcd")
        assert before.returncode == 1
        assert re.fullmatch(
            r"error: the database postgresql://\S+ has no mediamesh schema yet: run `mediamesh migrate`\n",
            before.stderr,
        ), before.stderr
        migrated = mediamesh({**env, "MEDIAMESH_OWNER_DATABASE_URL": roles.owner_url}, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "is up to date" in migrated.stdout and migrated.stderr == ""
        after = mediamesh(env, "status", "abcd")
        assert after.returncode == 1
        assert "error: no asset matches 'abcd'" in after.stderr
