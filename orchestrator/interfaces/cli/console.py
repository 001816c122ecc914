"""What every command shares: the two consoles (data to stdout, progress and errors to stderr) and progress bars."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from mediamesh.orchestrator.execution.planner import PlannedValue

__all__ = ["ASSET_HELP", "RichProgress", "err", "out", "progress_bar"]

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
# How every command that takes an ASSET resolves it, in this order (README, "The CLI").
ASSET_HELP = "Asset id, recorded name, unique id prefix (any length), or a file whose bytes were ingested."


class RichProgress:
    """Engine progress as a Rich bar: one step per value computed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task_id = progress.add_task("computing", total=None)
        self.lock = threading.Lock()

    def planned(self, count: int) -> None:
        self.progress.update(self.task_id, total=count)

    def started(self, value: PlannedValue) -> None:
        self.progress.update(self.task_id, description=f"{value.ref} {value.asset[:12]}")

    def finished(self, value: PlannedValue, outcome: str) -> None:
        with self.lock:
            self.progress.advance(self.task_id)


def progress_bar() -> Progress:
    """A transient bar on stderr, so that stdout carries only data."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
