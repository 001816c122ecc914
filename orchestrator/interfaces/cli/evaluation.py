"""The ``mediamesh eval`` group: MediaFM (``eval mediafm``, also ``eval`` alone) and shot detection (``eval shots``)."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mediamesh.features.errors import did_you_mean
from mediamesh.features.shot_evaluation import CutScore, ReferenceClip, combined, read_reference_cuts, score_cuts
from mediamesh.orchestrator.interfaces.cli import mediafm
from mediamesh.orchestrator.interfaces.cli.console import out, progress_bar

if TYPE_CHECKING:
    from mediamesh.features.shots import Detection

__all__ = ["app", "shots"]


def shots(
    reference: Annotated[
        Path,
        typer.Argument(
            metavar="REFERENCE.csv",
            help="CSV with the header path,cut_seconds: a row per cut, one empty cut_seconds for a clip without "
            "cuts; relative paths are read from the CSV's folder.",
        ),
    ],
    detector: Annotated[
        list[str] | None,
        typer.Option(
            "--detector",
            help="A detector to score (repeatable; default: the shots feature's): content, adaptive, transnetv2, "
            "or several joined with '+' (content+transnetv2).",
        ),
    ] = None,
    tolerance: Annotated[
        int, typer.Option(min=0, help="Frames (at the clip's own rate) a detected cut may be off and still match.")
    ] = 1,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"reference", "tolerance_frames", "detectors": {NAME: {"overall", "clips": [...]}}}; each '
            'score is {"precision", "recall", "f1", "matched", "reference", "detected"} (per clip also "missed" '
            'and "extra" cut times) under "tolerance" and "exact".',
        ),
    ] = False,
) -> None:
    """Score shot detectors against reference hard cuts: precision, recall and F1 within --tolerance frames
    and frame-exact, per clip and overall, with the cuts that disagree; gradual transitions are counted."""
    from mediamesh.features.shots import DEFAULT_DETECTOR, DETECTORS, detect

    detectors = list(dict.fromkeys(detector or [DEFAULT_DETECTOR]))
    for name in detectors:
        if name not in DETECTORS:
            raise typer.BadParameter(
                f"no detector {name!r}; the detectors are {', '.join(DETECTORS)}.{did_you_mean(name, DETECTORS)}",
                param_hint="--detector",
            )
    clips = read_reference_cuts(reference)
    results: dict[str, list[_ClipResult]] = {name: [] for name in detectors}
    with progress_bar() as progress:
        task = progress.add_task("detecting shots", total=len(clips) * len(detectors))
        for clip in clips:
            for name in detectors:
                progress.update(task, description=f"{name} on {escape(clip.name)}")
                started = time.perf_counter()
                found = detect(clip.path, name)
                results[name].append(_ClipResult.of(clip, found, time.perf_counter() - started, tolerance))
                progress.advance(task)
    if as_json:
        out.print_json(json.dumps(_as_json(reference, tolerance, results)))
        return
    _print_table(results, tolerance)


@dataclass(frozen=True)
class _ClipResult:
    """One detector on one clip: what it found, and its hard cuts scored within the tolerance and exactly."""

    clip: ReferenceClip
    detection: Detection
    seconds: float
    within: CutScore
    exact: CutScore

    @classmethod
    def of(cls, clip: ReferenceClip, detection: Detection, seconds: float, tolerance: int) -> _ClipResult:
        def score(frames: int) -> CutScore:
            return score_cuts(clip.cuts, detection.cuts, fps=detection.fps, tolerance_frames=frames)

        return cls(clip, detection, seconds, score(tolerance), score(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.clip.name,
            "fps": self.detection.fps,
            "frames": self.detection.frames,
            "seconds": self.seconds,
            "reference_cuts": list(self.clip.cuts),
            "cuts": list(self.detection.cuts),
            "gradual": [list(span) for span in self.detection.gradual],
            "tolerance": self.within.to_json(),
            "exact": self.exact.to_json(),
        }


def _overall(clips: list[_ClipResult]) -> dict[str, Any]:
    seconds = sum(c.seconds for c in clips)
    frames = sum(c.detection.frames for c in clips)
    return {
        "clips": len(clips),
        "frames": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds if seconds else None,
        "gradual": sum(len(c.detection.gradual) for c in clips),
        "tolerance": combined(c.within for c in clips).to_json(with_cuts=False),
        "exact": combined(c.exact for c in clips).to_json(with_cuts=False),
    }


def _as_json(reference: Path, tolerance: int, results: dict[str, list[_ClipResult]]) -> dict[str, Any]:
    return {
        "reference": str(reference),
        "tolerance_frames": tolerance,
        "detectors": {
            name: {"overall": _overall(clips), "clips": [c.to_json() for c in clips]} for name, clips in results.items()
        },
    }


def _print_table(results: dict[str, list[_ClipResult]], tolerance: int) -> None:
    within = f"±{tolerance}"
    table = Table(
        "clip", "detector", "cuts", "found", "gradual", f"P {within}", f"R {within}", f"F1 {within}",
        "P exact", "R exact", "F1 exact", "frames/s",
        title=f"hard cuts against the reference, within {tolerance} frame(s) and frame-exact",
    )  # fmt: skip
    names = list(results)
    clip_count = len(next(iter(results.values())))
    for index in range(clip_count):
        for name in names:
            result = results[name][index]
            rate = result.detection.frames / result.seconds if result.seconds else 0.0
            table.add_row(
                escape(result.clip.name) if name == names[0] else "",
                escape(name),
                str(len(result.clip.cuts)),
                str(len(result.detection.cuts)),
                str(len(result.detection.gradual)),
                *_figures(result.within),
                *_figures(result.exact),
                f"{rate:.0f}",
                end_section=name == names[-1],
            )
    for name in names:
        overall = _overall(results[name])
        table.add_row(
            "overall" if name == names[0] else "",
            escape(name),
            str(overall["tolerance"]["reference"]),
            str(overall["tolerance"]["detected"]),
            str(overall["gradual"]),
            *_figures(combined(c.within for c in results[name])),
            *_figures(combined(c.exact for c in results[name])),
            f"{overall['frames_per_second'] or 0:.0f}",
            style="bold",
        )
    out.print(table)
    disagreements = [(name, r) for name in names for r in results[name] if r.within.missed or r.within.extra]
    if disagreements:
        out.print(f"cuts that disagree within {tolerance} frame(s), in seconds:")
    for name, result in disagreements:
        parts = [
            f"{label} {', '.join(f'{t:.3f}' for t in cuts)}"
            for label, cuts in (("missed", result.within.missed), ("extra", result.within.extra))
            if cuts
        ]
        out.print(
            f"  {escape(name)} on {escape(result.clip.name)}: {'; '.join(parts)}", highlight=False, soft_wrap=True
        )


def _figures(score: CutScore) -> tuple[str, str, str]:
    return f"{score.precision:.3f}", f"{score.recall:.3f}", f"{score.f1:.3f}"


def _unless_subcommand(command: Callable[..., None]) -> Callable[..., None]:
    """A group callback with ``command``'s options that runs it when no subcommand is named, so that
    ``mediamesh eval --json`` goes on meaning ``mediamesh eval mediafm --json``."""
    signature = inspect.signature(command, eval_str=True)
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)

    def callback(ctx: typer.Context, **options: Any) -> None:
        if ctx.invoked_subcommand is None:
            command(**options)
            return
        given = {name for name, param in signature.parameters.items() if options[name] != param.default}
        if given:
            flags = ", ".join(param.opts[0] for param in ctx.command.params if param.name in given)
            raise typer.BadParameter(
                f"these options belong to `mediamesh eval mediafm`; give `{ctx.invoked_subcommand}` its own after its "
                "name",
                ctx,
                param_hint=flags,
            )

    callback.__signature__ = signature.replace(parameters=[context, *signature.parameters.values()])  # type: ignore[attr-defined]
    callback.__annotations__ = {"ctx": typer.Context, **{p.name: p.annotation for p in signature.parameters.values()}}
    return callback


app = typer.Typer(
    name="eval",
    help="Evaluate: MediaFM checkpoints (`eval mediafm`, or `eval` alone with its options) or shot detectors "
    "(`eval shots`).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.callback()(_unless_subcommand(mediafm.evaluate))
app.command(name="mediafm")(mediafm.evaluate)
app.command()(shots)
