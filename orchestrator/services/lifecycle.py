"""How a mediamesh command lives in its home: what it writes where, what it leaves behind, how it stops.

``enter(home)`` runs first in every command (``orchestrator.interfaces.cli.main``). It points everything a command
or its children would write elsewhere at the home (Prefect's settings, torch's compile caches, every
temporary file), gives the process a scratch folder ``$MEDIAMESH_HOME/tmp/PID-STARTTIME`` (removed at
exit; swept by the next command when its owner died without removing it), and makes SIGTERM, like
Ctrl-C, end the children it runs and unwind the command, so that ``finally`` blocks and exit hooks run.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType

from mediamesh.features.processes import end_children, process_tag, tag_alive

__all__ = ["enter", "sweep_scratch", "write_private"]

_TAG = re.compile(r"\d+-\d+")


def enter(home: Path) -> Path:
    """Set this process up as a mediamesh command of ``home``; its scratch folder."""
    home = home.expanduser().resolve()
    _env_defaults(home)
    root = home / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    sweep_scratch(root)
    scratch = root / process_tag()
    scratch.mkdir(mode=0o700, exist_ok=True)
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    # Every tempfile user (features, Prefect's runner storage, torch) and every child lands here.
    tempfile.tempdir = str(scratch)
    os.environ["TMPDIR"] = str(scratch)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # A signal the shell ignores (nohup, a background job) stays ignored.
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, _interrupt)
    return scratch


def sweep_scratch(root: Path) -> list[Path]:
    """Remove the scratch folders under ``root`` whose owner has exited; the folders removed."""
    swept = []
    for entry in root.iterdir() if root.is_dir() else ():
        if _TAG.fullmatch(entry.name) and not tag_alive(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(entry)
    return swept


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user alone (0600, in a 0700 folder), never wider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _env_defaults(home: Path) -> None:
    # Read before Prefect and torch are imported; a value the user set wins.
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home / "cache" / "torchinductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(home / "cache" / "triton"))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Children first: a thread waiting on ffmpeg would otherwise hold the exit until the encode ends.
    end_children()
    raise KeyboardInterrupt(signal.Signals(signum).name)
