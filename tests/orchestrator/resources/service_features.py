"""Features for the service tests: a CPU stage, a GPU stage after it and a CPU stage after that.

Each call appends ``feature asset worker`` to the file ``MEDIAMESH_TEST_CALLS`` names (when set), so a
test counts real computations across worker processes. ``landed`` sleeps ``MEDIAMESH_TEST_SLOW_S``
seconds first (default 0), long enough for a test to kill the worker computing it.
"""

from __future__ import annotations

import fcntl
import os
import time

from mediamesh.features import SourceMedia, feature
from tests.orchestrator.resources.counting_features import Number


def _record(name: str, asset: str) -> None:
    path = os.environ.get("MEDIAMESH_TEST_CALLS")
    if not path:
        return
    line = f"{name} {asset} {os.environ.get('MEDIAMESH_WORKER_NAME', '-')} {os.getpid()}\n"
    with open(path, "a") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(line)


@feature(version="1")
def landed(source: SourceMedia) -> Number:
    """The asset's size in bytes, slowly when asked to be."""
    _record("landed", source.asset)
    time.sleep(float(os.environ.get("MEDIAMESH_TEST_SLOW_S", "0")))
    return Number(source.path.stat().st_size)


@feature(version="1", resources="gpu")
def accelerated(landed: Number) -> Number:
    """A GPU-pool feature: runs only on a GPU worker."""
    _record("accelerated", "-")
    return Number(landed.value + 1)


@feature(version="1")
def settled(accelerated: Number) -> Number:
    """A CPU feature after a GPU one: the asset goes back to the CPU pool."""
    _record("settled", "-")
    return Number(accelerated.value * 2)
