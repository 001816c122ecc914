"""``mediamesh dev-stack`` end to end: a video put into the landing bucket is computed and readable over HTTP.

Nothing but the MinIO SDK's put (the README's dev-stack example, run as written) touches the stack:
SeaweedFS's filer posts the event to the API, the API registers the object and hands its stages to the pools,
the CPU worker and the GPU-pool worker compute them (the built-in features, lite encoders), and the values
are read back over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from mediamesh.features import default_registry
from tests.readme import block

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests" / "data" / "testvideo.mp4"
START_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 400.0
# Computed when a query asks for them (match cutting's), so an ingest leaves them missing.
ON_DEMAND = {spec.name for spec in default_registry().values() if spec.on_demand}


@pytest.fixture
def stack(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, object], Path]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_"))}
    env.update({"MEDIAMESH_HOME": str(home), "MEDIAMESH_ENCODERS": "lite"})
    log = tmp_path / "dev-stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mediamesh", "dev-stack", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (home / "stack.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"dev-stack did not start:\n{log.read_text()}")
        time.sleep(0.5)
    time.sleep(0.2)  # the file is written whole, but give the writer its close
    info = json.loads((home / "stack.json").read_text())
    yield process, info, home
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_landed_video_is_computed_on_the_pools_and_read_over_http(
    stack: tuple[subprocess.Popen[bytes], dict[str, object], Path], tmp_path: Path
) -> None:
    process, info, home = stack
    # Every file that holds a secret (the token, the S3 secret key) is the user's alone while the stack runs.
    holding_secrets = [home / "stack.json", home / "stack" / "seaweed" / "s3.json"]
    holding_secrets.append(home / "stack" / "seaweed" / "notification.toml")
    for path in holding_secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    assert set(info) >= {
        "api_url",
        "token",
        "s3_endpoint",
        "s3_access_key",
        "s3_secret_key",
        "landing_bucket",
        "prefect_ui",
    }
    # The README's example puts the video into the landing bucket, from the folder the stack was started in.
    user = tmp_path / "user"
    user.mkdir()
    (user / ".mediamesh").symlink_to(home)
    shutil.copyfile(CLIP, user / "pilot.mp4")
    (user / "put.py").write_text(block("devstack"), encoding="utf-8")
    put = subprocess.run([sys.executable, "put.py"], cwd=user, capture_output=True, text=True, timeout=120)
    assert put.returncode == 0, put.stdout + put.stderr

    name = quote(f"s3://{info['landing_bucket']}/shows/pilot.mp4", safe="")
    headers = {"Authorization": f"Bearer {info['token']}"}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    with httpx.Client(base_url=str(info["api_url"]), headers=headers, timeout=30) as api:
        states: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            answer = api.get(f"/assets/{name}/status")
            if answer.status_code == 200:
                states = answer.json()["features"]
                assert not [s for s in states if s["state"] == "failed"], states
                if all(s["state"] in ("stored", "waiting") or s["feature"] in ON_DEMAND for s in states):
                    break
            else:
                assert answer.status_code == 404, answer.text  # not registered yet
            time.sleep(1)
        else:
            raise AssertionError(f"not computed in {SETTLE_TIMEOUT_S:.0f} s: {states}\n{_logs(home)}")

        workers = {s["feature"]: str(s["worker"]).split("@")[0] for s in states if s["state"] == "stored"}
        gpu = {"video_embedding", "audio_embedding", "text_embedding", "title_embedding"}
        assert {f for f, w in workers.items() if w == "dev-stack-gpu"} == gpu, workers
        assert {f for f, w in workers.items() if w == "dev-stack-cpu"} == set(workers) - gpu, workers
        assert {s["feature"] for s in states if s["state"] == "waiting"} == {"contextual"}  # no checkpoint yet

        shots = api.get(f"/assets/{name}/features/shots").json()
        assert [round(s["start_time"], 2) for s in shots["value"]][:2] == [0.0, 1.0]
        fused = api.get(f"/assets/{name}/features/fused", params={"start": 0, "stop": 2}).json()
        assert fused["shape"][0] == 2 and fused["shots"]["total"] == len(shots["value"])

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert [path for path in holding_secrets if path.exists()] == []
    said = (tmp_path / "dev-stack.log").read_text()
    for secret in (info["token"], info["s3_secret_key"]):
        assert str(secret) not in said + _logs(home), "a secret was printed"
    assert str(home / "stack.json") in said, "it says where the secrets are"
    for pid in info["pids"].values():  # type: ignore[attr-defined]
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived the stack"


def _logs(home: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-20:])
        for p in sorted((home / "stack" / "logs").glob("*.log"))
    )
