"""Commands that run services: the HTTP API, pool workers, the whole dev stack, and stopping Prefect."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mediamesh.orchestrator.interfaces.cli.console import err, out
from mediamesh.orchestrator.services.prefect_server import stop_prefect_server
from mediamesh.store import StoreSettings

__all__ = ["dev_stack", "serve", "stop", "worker"]


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (OpenAPI at /docs): reads by version, and S3 / SeaweedFS event webhooks.

    Configured by MEDIAMESH_API_TOKEN, MEDIAMESH_API_OPEN_READS, MEDIAMESH_API_LANDING_BUCKETS and the store's
    MEDIAMESH_* variables; MEDIAMESH_EXECUTION=pools hands announced work to the worker pools.
    """
    from mediamesh.orchestrator.interfaces.api import ApiSettings
    from mediamesh.orchestrator.interfaces.api import serve as run_api

    try:
        run_api(host, port, ApiSettings())
    except KeyboardInterrupt:  # uvicorn has shut down gracefully and passes the signal on
        err.print("api stopped")


def worker(
    pool: Annotated[str, typer.Option(help="cpu: every feature not marked gpu; gpu: resources='gpu' features.")],
    limit: Annotated[
        int | None,
        typer.Option(help="Flow runs at once (default: 1 per visible GPU on the gpu pool, 1 on the cpu pool)."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Values one flow run computes at once.")] = 1,
    name: Annotated[str | None, typer.Option(help="Worker name (default: POOL-HOST-PID).")] = None,
    poll: Annotated[float, typer.Option(min=0.2, help="Seconds between polls of the work pool.")] = 2.0,
    healthcheck_port: Annotated[
        int | None, typer.Option(help="Serve GET /health on this port (Prefect's worker health check).")
    ] = None,
) -> None:
    """Compute values handed to a work pool, until interrupted (Ctrl-C or SIGTERM). Flow runs run in this
    process, which keeps its imports, store connection and loaded models from one run to the next."""
    from mediamesh.orchestrator.execution.workers import run_worker
    from mediamesh.orchestrator.services.prefect_server import prefect_api_url

    if pool not in ("cpu", "gpu"):
        raise typer.BadParameter("choose cpu or gpu", param_hint="--pool")
    if limit is None:
        limit = _visible_gpus() if pool == "gpu" else 1
    if limit < 1:
        raise typer.BadParameter("at least 1", param_hint="--limit")
    api_url = prefect_api_url(StoreSettings().home_dir, on_start=lambda: err.print("starting the local Prefect server"))
    err.print(f"{pool} worker: {limit} flow run(s) at once, {threads} value(s) each; Prefect API {api_url}")
    try:
        run_worker(
            "gpu" if pool == "gpu" else "cpu",
            api_url=api_url,
            limit=limit,
            name=name,
            threads=threads,
            poll_s=poll,
            healthcheck_port=healthcheck_port,
            printer=err.print,
        )
    except KeyboardInterrupt:
        err.print("worker stopped")


def _visible_gpus() -> int:
    """One flow run per GPU: CUDA devices torch sees, at least 1 (a GPU-pool worker without one uses the CPU)."""
    import torch

    return max(1, torch.cuda.device_count())


def stop() -> None:
    """Stop the local Prefect server this home started (the embedded Postgres stops on its own)."""
    stopped = stop_prefect_server(StoreSettings().home_dir)
    out.print("stopped the local Prefect server" if stopped else "no local Prefect server was running")


def dev_stack(
    port: Annotated[int, typer.Option(help="API port (0: any free port).")] = 8000,
    landing_bucket: Annotated[str, typer.Option(help="The bucket whose new objects are ingested.")] = "landing",
) -> None:
    """The whole service on this machine, without Docker: embedded Postgres, SeaweedFS S3 with a landing bucket
    that notifies the API, the Prefect server, the API, a CPU worker and a GPU-pool worker. Writes
    $MEDIAMESH_HOME/stack.json; Ctrl-C or SIGTERM stops everything it started."""
    from mediamesh.orchestrator.services.devstack import DevStack

    settings = StoreSettings()
    try:
        with DevStack(settings.home_dir, api_port=port, landing_bucket=landing_bucket, log=err.print) as stack:
            out.print_json(json.dumps(stack.public_info))
            err.print(f"the API token and the S3 keys are in {stack.info_path} (mode 0600); Ctrl-C to stop")
            stack.wait()
    except KeyboardInterrupt:
        pass
    err.print("dev stack stopped")
