"""The MediaFM commands: train a checkpoint, evaluate it, promote it (or a feature version)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.table import Table

from mediamesh.features.errors import DefinitionError
from mediamesh.features.mediafm import TrainOptions
from mediamesh.features.spec import MEDIAFM
from mediamesh.orchestrator.interfaces.cli.console import err, out, progress_bar
from mediamesh.orchestrator.mesh import Mesh

__all__ = ["evaluate", "promote", "train"]


def with_options(
    options_type: type[Any], name: str = "options"
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The command with its keyword-only ``name`` parameter replaced by one ``--option`` per field of the
    ``options_type`` dataclass (its default, and ``metadata["help"]`` as help); the command is called with
    the dataclass built from them, and a value the dataclass refuses is a bad parameter."""
    hints = get_type_hints(options_type, include_extras=True)
    defaults = options_type()
    names = [f.name for f in fields(options_type)]
    generated = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=getattr(defaults, f.name),
            annotation=Annotated[hints[f.name], typer.Option(help=f.metadata["help"])],
        )
        for f in fields(options_type)
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.name != name]

        def run(**values: Any) -> None:
            try:
                options = options_type(**{key: values.pop(key) for key in names})
            except DefinitionError as exc:
                raise typer.BadParameter(str(exc)) from exc
            command(**values, **{name: options})

        run.__name__, run.__qualname__, run.__doc__ = command.__name__, command.__qualname__, command.__doc__
        run.__module__ = command.__module__
        run.__signature__ = signature.replace(parameters=[*kept, *generated])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in (*kept, *generated)}
        return run

    return decorate


@with_options(TrainOptions)
def train(
    what: Annotated[str, typer.Argument(help="What to train: 'mediafm'.")],
    config: Annotated[str, typer.Option(help="Model size: small (CPU, minutes) or base (GPU).")] = "small",
    promote_it: Annotated[bool, typer.Option("--promote", help="Promote the checkpoint when done.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"checkpoint", "config", "optimizer", "steps", "train_assets", "val_assets", "metrics", '
            '"promoted"}.',
        ),
    ] = False,
    *,
    options: TrainOptions,
) -> None:
    """Train MediaFM by masked shot modeling on the fused values in the store; save the checkpoint there."""
    from mediamesh.orchestrator.execution.training import train_mediafm

    if what != MEDIAFM:
        raise typer.BadParameter(f"only {MEDIAFM!r} can be trained", param_hint="WHAT")
    with Mesh.open() as mesh, progress_bar() as progress:
        task = progress.add_task("training MediaFM", total=None)

        def on_step(report: Any) -> None:
            val = f", val {report.val_loss:.4f}" if report.val_loss is not None else ""
            progress.update(
                task,
                total=report.steps,
                completed=report.step,
                description=f"training MediaFM: loss {report.train_loss:.4f}{val}",
            )

        record, meta = train_mediafm(mesh, options, config=config, on_step=on_step)
        if promote_it:
            mesh.store.promote(MEDIAFM, record.id)
    if as_json:
        fields = ("optimizer", "steps", "train_assets", "val_assets", "metrics")
        summary = {"checkpoint": record.id, "config": config, **{name: meta.get(name) for name in fields}}
        out.print_json(json.dumps({**summary, "promoted": promote_it}, default=str))
        return
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in meta["metrics"].items())
    out.print(f"checkpoint {record.id}", highlight=False)
    out.print(
        f"{config} config, {meta['optimizer']}, {meta['steps']} steps on {len(meta['train_assets'])} title(s), "
        f"{len(meta['val_assets'])} held out; {metrics}",
        highlight=False,
    )
    if promote_it:
        out.print("promoted; compute it with: mediamesh backfill contextual")
    else:
        out.print(f"promote it with: mediamesh promote mediafm {record.id[:12]}")


def evaluate(
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint id or prefix (default: the promoted one).")] = None,
    labels: Annotated[Path | None, typer.Option(help="CSV of asset, shot index or time range, label.")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"retrieval": {NAME: {"top1", "top5", "mrr", "n"}}, "probe": {NAME: {...}} or null}.'
        ),
    ] = False,
) -> None:
    """Masked-shot retrieval on held-out titles (MediaFM vs the neighbour average), and a linear probe
    per representation (video, audio, text, fused, contextual) when --labels is given."""
    from mediamesh.orchestrator.execution.training import evaluate_probe, evaluate_retrieval

    with Mesh.open() as mesh:
        retrieval = evaluate_retrieval(mesh, checkpoint)
        probes = evaluate_probe(mesh, labels, checkpoint) if labels is not None else None
    if as_json:
        probe_json = {name: asdict(p) for name, p in probes.items()} if probes is not None else None
        out.print_json(json.dumps({"retrieval": {n: asdict(m) for n, m in retrieval.items()}, "probe": probe_json}))
        return
    table = Table("masked-shot retrieval", "top-1", "top-5", "MRR", "shots")
    for name, m in retrieval.items():
        table.add_row(name, f"{m.top1:.3f}", f"{m.top5:.3f}", f"{m.mrr:.3f}", str(m.n))
    out.print(table)
    if probes is not None:
        probe_table = Table("linear probe", "micro-AP", "macro-AP", "Kendall's tau", "train", "test")
        for name, p in probes.items():
            tau = f"{p.kendall_tau:.3f}" if p.kendall_tau is not None else "-"
            probe_table.add_row(name, f"{p.micro_ap:.3f}", f"{p.macro_ap:.3f}", tau, str(p.n_train), str(p.n_test))
        out.print(probe_table)


def promote(
    what: Annotated[str, typer.Argument(help="FEATURE@VERSION, or 'mediafm' for a trained checkpoint.")],
    checkpoint: Annotated[
        str | None,
        typer.Argument(help="With 'mediafm': the checkpoint id (or a unique prefix) from `mediamesh train`."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"feature", "version", "assets_with_it", "assets"} (or {"feature", "checkpoint"}).'
        ),
    ] = False,
) -> None:
    """Switch default readers of a feature to VERSION at once, or make a trained checkpoint the one the
    contextual features use. Readers pinned to a version keep it; nothing stored stops being readable.
    """
    if what == MEDIAFM:
        if checkpoint is None:
            raise typer.BadParameter("give the checkpoint id from `mediamesh train`", param_hint="CHECKPOINT")
        with Mesh.open() as mesh:
            record = mesh.store.promote(MEDIAFM, checkpoint)
        if as_json:
            out.print_json(json.dumps({"feature": MEDIAFM, "checkpoint": record.id}))
            return
        out.print(f"promoted {what} checkpoint {record.id[:12]}; compute it with: mediamesh backfill contextual")
        return
    name, _, version = what.partition("@")
    if not name or not version or checkpoint is not None:
        raise typer.BadParameter(f"give FEATURE@VERSION (e.g. shots@2) or 'mediafm CHECKPOINT', not {what!r}")
    with Mesh.open() as mesh:
        spec = mesh.registry.resolve(name)
        mesh.store.promote_feature(spec.name, version)
        having, total = mesh.store.version_coverage(spec.name, version)
    if as_json:
        out.print_json(
            json.dumps({"feature": spec.name, "version": version, "assets_with_it": having, "assets": total})
        )
    else:
        out.print(f"default readers of {spec.name} now get {spec.name}@{version}; {having} of {total} assets have it")
    if having < total:
        how = (
            f"mediamesh backfill {spec.ref}"
            if version == spec.version
            else f"the registry is at {spec.ref}, so backfill with one at {spec.name}@{version}"
        )
        err.print(
            f"[yellow]warning:[/yellow] {total - having} of {total} assets lack {spec.name}@{version}, so default "
            f"readers get nothing for them; backfill first ({how})",
            highlight=False,
        )
