"""One home, one store: ``home.toml`` records the stores a home was created with, and ``stack.json`` (while the
dev stack that wrote it runs) supplies the settings a command in that home leaves unset."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from mediamesh.features.processes import process_tag
from mediamesh.store import HomeMismatchError, StoreSettings, open_store
from mediamesh.store.home import EMBEDDED, HomeStores
from tests.orchestrator.test_cli import mediamesh
from tests.services import S3Endpoint


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """A user's environment for commands that only open the store: no Prefect, no S3 unless a test adds it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_"))}
    return {
        **clean,
        "MEDIAMESH_HOME": str(tmp_path / "home"),
        "MEDIAMESH_DATABASE_URL": database_url,
        "MEDIAMESH_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDIAMESH_ENCODERS": "lite",
        "COLUMNS": "200",
    }


def _s3(seaweed: S3Endpoint, object_store: str) -> dict[str, str]:
    return {
        "MEDIAMESH_OBJECT_STORE": object_store,
        "MEDIAMESH_S3_ENDPOINT": seaweed.endpoint,
        "MEDIAMESH_S3_ACCESS_KEY": seaweed.access_key,
        "MEDIAMESH_S3_SECRET_KEY": seaweed.secret_key,
    }


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    return line


def test_a_home_records_its_stores_without_secrets_and_refuses_others(
    env: dict[str, str], database_url: str, seaweed: S3Endpoint, tmp_path: Path
) -> None:
    home = Path(env["MEDIAMESH_HOME"]).resolve()
    # The roles log in without one; a password in the URL is accepted, and must not be written down.
    with_password = make_url(database_url).set(password="hunter2").render_as_string(hide_password=False)
    with open_store(StoreSettings(home=home, database_url=with_password)):
        pass
    recorded = tomllib.loads((home / "home.toml").read_text())
    plain = make_url(database_url)._replace(drivername="postgresql", password=None)
    assert recorded == {"object_store": (home / "blobs").as_uri(), "database": plain.render_as_string(False)}
    assert "hunter2" not in (home / "home.toml").read_text()

    # The database shared, the blobs elsewhere: the CLI stops before it reads or writes anything.
    line = _error_line(mediamesh({**env, **_s3(seaweed, "s3://mediamesh-test/other")}, "status", "0"))
    assert line == (
        f"error: the home {home} was created with object store {(home / 'blobs').as_uri()} and database "
        f"{recorded['database']} ({home / 'home.toml'}), but this command uses object store "
        f"s3://mediamesh-test/other and database {recorded['database']}: use the home's settings, or another "
        "MEDIAMESH_HOME"
    )
    elsewhere = StoreSettings(home=home, database_url=database_url.rsplit("/", 1)[0] + "/another")
    with pytest.raises(HomeMismatchError, match=r"/another: use the home's settings, or another MEDIAMESH_HOME$"):
        open_store(elsewhere)


def test_an_s3_home_keeps_its_bucket_wherever_the_endpoint_moves(
    database_url: str, seaweed: S3Endpoint, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    bucket = f"s3://mediamesh-test/{uuid.uuid4().hex}/"
    settings = StoreSettings(
        home=home,
        database_url=database_url,
        object_store=bucket,
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
    )
    with open_store(settings):
        pass
    assert tomllib.loads((home / "home.toml").read_text())["object_store"] == bucket.rstrip("/")
    moved = settings.model_copy(update={"s3_endpoint": seaweed.endpoint.replace("127.0.0.1", "localhost")})
    with open_store(moved) as store:
        assert store.blobs.describe().endswith(f"localhost:{seaweed.endpoint.rsplit(':', 1)[1]}")
    with pytest.raises(HomeMismatchError, match=rf"object store {(home / 'blobs').as_uri()} and database"):
        open_store(StoreSettings(home=home, database_url=database_url))


def test_the_embedded_server_by_its_socket_is_the_embedded_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "pgdata").mkdir(parents=True)
    # postmaster.pid's fifth line is where the server's socket is (elsewhere when pgdata's path is long).
    (home / "pgdata" / "postmaster.pid").write_text("123\n/data\n1\n5432\n/tmp/short-socket\n\n")
    url = "postgresql+psycopg://mediamesh_app:@/mediamesh?host=%2Ftmp%2Fshort-socket"
    assert HomeStores.of(home, None, url).database == EMBEDDED
    assert HomeStores.of(home, None, None).database == EMBEDDED
    other = HomeStores.of(home, None, "postgresql://app:pw@db.example:5432/mesh")
    assert other.database == "postgresql://app@db.example:5432/mesh"


def test_a_running_dev_stack_supplies_the_settings_and_a_stopped_one_is_one_line(
    env: dict[str, str], database_url: str, seaweed: S3Endpoint
) -> None:
    home = Path(env["MEDIAMESH_HOME"]).resolve()
    object_store = f"s3://mediamesh-test/{uuid.uuid4().hex}"
    HomeStores(object_store, HomeStores.of(home, None, database_url).database, dev_stack=True).write(home)
    stack = {
        "object_store": object_store,
        "database_url": database_url,
        "s3_endpoint": seaweed.endpoint,
        "s3_access_key": seaweed.access_key,
        "s3_secret_key": seaweed.secret_key,
        "process": process_tag(),  # this test's process stands in for the dev stack's: it is running
    }
    (home / "stack.json").write_text(json.dumps(stack))
    without = {k: v for k, v in env.items() if k != "MEDIAMESH_DATABASE_URL"}
    info = mediamesh(without, "info", "--json")
    assert info.returncode == 0, info.stderr
    shown = json.loads(info.stdout)
    assert shown["object_store"] == f"{object_store} at http://{seaweed.endpoint}"
    assert shown["database"].endswith("/" + database_url.rsplit("/", 1)[1])

    # The stack stopped without tidying up (SIGKILL): its stack.json names a process that is gone.
    (home / "stack.json").write_text(json.dumps({**stack, "process": f"{os.getpid()}-1"}))
    assert _error_line(mediamesh(env, "status", "0")) == (
        f"error: the home {home} keeps its blobs in the dev stack's SeaweedFS ({object_store}), and the dev stack "
        "is not running: start `mediamesh dev-stack` there, or use another MEDIAMESH_HOME"
    )
