"""docker-compose.yml and deploy/, checked without Docker: the stack is wired as its READMEs describe."""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from mediamesh.orchestrator.execution.dispatch import PoolSettings
from mediamesh.orchestrator.execution.workers import compute_values
from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.interfaces.cli import app
from mediamesh.store import StoreSettings

ROOT = Path(__file__).parents[1]
SERVICES = {"postgres", "minio", "minio-init", "prefect", "migrate", "api", "worker-cpu", "worker-gpu"}
ONE_OFF = {"minio-init", "migrate"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
COMPOSE_SUBCOMMANDS_OF_SERVICES = {"up", "logs", "restart", "stop", "start", "build", "ps", "pull", "down", "rm"}
_VARIABLE = re.compile(r"MEDIAMESH_[A-Z0-9_]*[A-Z0-9]")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_the_stack_has_its_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_build_contexts_and_dockerfiles_exist(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == {"migrate", "api", "worker-cpu", "worker-gpu"}
    for name, build in built.items():
        context = ROOT / build["context"]
        assert context.is_dir(), name
        assert (context / build["dockerfile"]).is_file(), name
        for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", (context / build["dockerfile"]).read_text(), re.M):
            assert all((context / source).exists() for source in copied.split()), (name, copied)
    assert built["worker-gpu"]["dockerfile"] == "deploy/Dockerfile.cuda"
    cuda = (ROOT / "deploy/Dockerfile.cuda").read_text()
    assert re.search(r"^FROM nvidia/cuda:\S+-runtime-", cuda, re.M)
    assert "torch==2.13.0" in cuda and "torch==2.13.0" in (ROOT / "deploy/Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", (ROOT / "deploy/Dockerfile").read_text(), re.M)


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), (name, source)


def test_every_dependency_exists_with_a_condition_it_can_meet(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in services, (name, target)
            condition = spec["condition"]
            assert condition in CONDITIONS, (name, target, condition)
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
            if condition == "service_completed_successfully":
                assert target in ONE_OFF and services[target].get("restart") == "no", (name, target)
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["minio-init"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES - ONE_OFF:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), name


def test_ports_are_bound_to_loopback_as_documented(services: dict[str, dict[str, Any]]) -> None:
    documented = {}
    for row in _table(ROOT / "deploy/README.md", "## Services"):
        documented[row[0].strip("`")] = sorted(re.findall(r"127\.0\.0\.1:\d+", row[1]))
    assert set(documented) == SERVICES
    for name, service in services.items():
        bound = sorted(port.rsplit(":", 1)[0] for port in service.get("ports", []))
        assert bound == documented[name], name
    assert documented["api"] == ["127.0.0.1:8000"]


def test_every_mediamesh_variable_set_is_one_mediamesh_reads(compose: dict[str, Any]) -> None:
    read = {f"MEDIAMESH_{name.upper()}" for name in StoreSettings.model_fields}
    read |= {f"MEDIAMESH_API_{name.upper()}" for name in ApiSettings.model_fields}
    read |= {f"MEDIAMESH_{name.upper()}" for name in PoolSettings.model_fields}
    for package in ("features", "orchestrator", "store"):
        for source in (ROOT / package).rglob("*.py"):
            read |= set(_VARIABLE.findall(source.read_text()))
    set_in_file = set()
    for service in compose["services"].values():
        set_in_file |= {key for key in service.get("environment", {}) if key.startswith("MEDIAMESH_")}
    set_in_file |= set(_VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    assert set_in_file - read == set()
    assert {"MEDIAMESH_DATABASE_URL", "MEDIAMESH_OBJECT_STORE", "MEDIAMESH_API_TOKEN"} <= set_in_file
    api = compose["services"]["api"]["environment"]
    for key in ("MEDIAMESH_S3_ENDPOINT", "MEDIAMESH_S3_ACCESS_KEY", "MEDIAMESH_S3_SECRET_KEY", "PREFECT_API_URL"):
        assert api[key], key


def test_every_service_the_readmes_name_exists(services: dict[str, dict[str, Any]]) -> None:
    named = {row[0].strip("`") for row in _table(ROOT / "deploy/README.md", "## Services")}
    for readme in (ROOT / "README.md", ROOT / "deploy/README.md"):
        named |= _compose_services_in(readme.read_text())
    assert named - set(services) == set()
    assert named >= {"api", "worker-cpu"}


def test_the_gpu_worker_reserves_an_nvidia_gpu(services: dict[str, dict[str, Any]]) -> None:
    [device] = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert services["worker-gpu"]["environment"]["MEDIAMESH_DEVICE"] == "cuda"
    assert "deploy" not in services["worker-cpu"]


def test_minio_announces_the_landing_bucket_to_the_api(services: dict[str, dict[str, Any]]) -> None:
    script = (ROOT / "deploy/minio-init.sh").read_text()
    assert "mc mb --ignore-existing" in script
    [endpoint] = re.findall(r"endpoint=\"([^\"]+)\"", script)
    assert re.search(r"mc event add \S+ \"\$arn\" --event put", script)
    assert 'arn="arn:minio:sqs::api:webhook"' in script
    routes = set(create_app(_no_mesh, ApiSettings(token=None)).openapi()["paths"])
    assert endpoint == "http://api:8000/events/s3" and "/events/s3" in routes
    assert "/ready" in routes and "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    landing = services["minio-init"]["environment"]["LANDING_BUCKET"]
    assert services["api"]["environment"]["MEDIAMESH_API_LANDING_BUCKETS"] == landing


def test_prefect_deployments_match_the_ones_mediamesh_creates() -> None:
    config = yaml.safe_load((ROOT / "deploy/prefect.yaml").read_text())
    settings = PoolSettings()
    pools = {d["name"]: d["work_pool"]["name"] for d in config["deployments"]}
    assert pools == {settings.cpu_pool: settings.cpu_pool, settings.gpu_pool: settings.gpu_pool}
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        assert (ROOT / path).is_file() and name == compute_values.fn.__name__
        assert set(deployment["parameters"]) <= set(inspect.signature(compute_values.fn).parameters)


def test_every_mediamesh_command_in_the_file_parses(services: dict[str, dict[str, Any]]) -> None:
    cli = typer.main.get_command(app)
    commands = {name: s["command"] for name, s in services.items() if s.get("image", "").startswith("mediamesh")}
    assert set(commands) == {"migrate", "api", "worker-cpu", "worker-gpu"}
    for name, command in commands.items():
        sub = cli.get_command(click.Context(cli), command[0])  # type: ignore[attr-defined]
        assert sub is not None, f"{name}: no command {command[0]!r}"
        sub.make_context(command[0], list(command[1:]))  # raises on an unknown option or a bad value
    assert "--healthcheck-port" in services["worker-cpu"]["command"]


def _no_mesh() -> Any:
    raise AssertionError("the app is only inspected here")


def _table(path: Path, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``heading``, as lists of cell texts."""
    text = path.read_text().split(heading, 1)[1]
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]


def _compose_services_in(text: str) -> set[str]:
    """The services that ``docker compose ...`` command lines in ``text`` name."""
    lines = [line.strip().split("#", 1)[0] for line in text.splitlines()]
    commands = [line for line in lines if line.startswith("docker compose ")]
    commands += re.findall(r"`(docker compose [^`]+)`", text.replace("\n", " "))
    named = set()
    for command_line in commands:
        words = shlex.split(command_line)[2:]
        command, rest = words[0], [w for w in words[1:] if not w.startswith("-")]
        rest = [w for w in rest if "=" not in w]  # option values such as --scale worker-cpu=4
        if command in COMPOSE_SUBCOMMANDS_OF_SERVICES:
            named |= set(rest)
        elif command in ("exec", "run") and rest:
            named.add(rest[0])
    return named
