"""The printed table and ``bench/results/latest.json``."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.harness import Figure, Memory

__all__ = ["RESULTS", "print_report", "write_results"]

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def print_report(
    console: Console,
    figures: list[Figure],
    errors: dict[str, str],
    *,
    elapsed_s: float,
    durations: dict[str, float] | None = None,
) -> None:
    table = Table(
        title="mediamesh benchmarks: medians; ratio = target / baseline, side by side",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("figure", style="bold", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("target", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("RSS Δ MiB", justify="right", no_wrap=True)
    for figure in figures:
        samples = figure.samples
        if samples is None:
            continue
        table.add_row(
            figure.name,
            str(len(samples.target)),
            _duration(samples.target_median),
            _duration(samples.baseline_median),
            f"{samples.ratio:.2f}x",
            figure.target_text,
            {True: "[green]pass[/]", False: "[red]MISS[/]", None: "-"}[figure.passed],
            _memory(figure.memory_target, figure.memory_baseline),
        )
    console.print(table)
    console.print()
    for figure in figures:
        console.print(f"[bold]{figure.name}[/]: {escape(figure.description)}", highlight=False)
        console.print(f"  target:   {escape(figure.target_label)}", highlight=False)
        console.print(f"  baseline: {escape(figure.baseline_label)}", highlight=False)
    console.print(
        "RSS Δ: growth of the peak resident set during one run, target / baseline "
        "(py: Python heap by tracemalloc, where the RSS peak cannot be read)",
        style="dim",
    )
    missed = [f for f in figures if f.passed is False and f.samples is not None]
    if missed:
        console.print(f"[red]Targets missed ({len(missed)}):[/]")
        for figure in missed:
            if figure.samples is not None:
                console.print(
                    f"  [red]{figure.name}[/]: {figure.samples.ratio:.2f}x, "
                    f"{_duration(figure.samples.target_median)} (target {figure.target_text})"
                )
    elif figures:
        console.print("[green]Every target met.[/]")
    for name, message in errors.items():
        console.print(f"[red]{name} could not be measured:[/] {escape(message)}")
    if durations:
        each = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
        console.print(f"Time per benchmark (set-up included): {each}", highlight=False)
    console.print(f"Took {elapsed_s:.0f} s. Results: {_relative(RESULTS)}")


def write_results(
    figures: list[Figure],
    errors: dict[str, str],
    *,
    quick: bool,
    started: datetime,
    elapsed_s: float,
    durations: dict[str, float] | None = None,
) -> Path:
    data: dict[str, Any] = {
        "started_at": started.isoformat(),
        "elapsed_s": elapsed_s,
        "benchmark_s": durations or {},
        "quick": quick,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "figures": [f.to_json() for f in figures],
        "missed": [f.name for f in figures if f.passed is False],
        "errors": errors,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    return RESULTS


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _memory(target: Memory | None, baseline: Memory | None) -> str:
    """Peak RSS growth of each side; the tracemalloc peak (marked ``py``) where RSS cannot be read."""
    if target is None or baseline is None:
        return "-"
    if target.rss_peak_delta is None or baseline.rss_peak_delta is None:
        return f"{_mib(target.traced_peak)} / {_mib(baseline.traced_peak)} py"
    return f"{_mib(target.rss_peak_delta)} / {_mib(baseline.rss_peak_delta)}"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
