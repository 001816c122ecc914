"""Fault injection for the fault suite (``tests/faults/``): inert unless ``MEDIAMESH_FAULT`` is set.

``MEDIAMESH_FAULT=POINT:FEATURE:ACTION[:DIR]`` acts when the value of ``FEATURE`` reaches ``POINT``:

- points: ``before-blob`` (nothing written yet), ``after-blob`` (blob stored, no row), ``before-index`` (row and
  lineage written in the open transaction, its search-index rows not yet), ``after-row`` (row, lineage and index
  rows committed, claim still held);
- actions: ``kill`` (SIGKILL this process, as an OOM killer or a lost node would) or ``pause`` (create
  ``DIR/paused``, then wait until ``DIR/resume`` exists, so a test can stop a backend at that exact moment).

Only tests set it. Reading one environment variable is all it costs when unset.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["AFTER_BLOB", "AFTER_ROW", "BEFORE_BLOB", "BEFORE_INDEX", "fault_point"]

BEFORE_BLOB, AFTER_BLOB, BEFORE_INDEX, AFTER_ROW = "before-blob", "after-blob", "before-index", "after-row"
_PAUSE_LIMIT_S = 300.0


def fault_point(point: str, feature: str) -> None:
    """Act on ``MEDIAMESH_FAULT`` if it names this point and feature; otherwise return at once."""
    spec = os.environ.get("MEDIAMESH_FAULT")
    if not spec:
        return
    where, _, rest = spec.partition(f"{point}:{feature}:")
    if where or not rest:
        return
    action, _, folder = rest.partition(":")
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause":
        _pause(Path(folder))


def _pause(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "paused").touch()
    deadline = time.monotonic() + _PAUSE_LIMIT_S
    while not (folder / "resume").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
