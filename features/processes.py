"""Child processes that die with the process that started them, and names for processes that pid reuse
cannot fool.

Linux's ``PR_SET_PDEATHSIG`` has the kernel kill a child when its parent dies, even by SIGKILL, when no
clean-up code can run. ``run`` starts every short-lived tool mediamesh calls (ffmpeg) that way, and
``end_children`` ends the ones still running when this process is told to stop. A process *tag*,
``PID-STARTTIME``, names one process for good: a later process given the same pid has another start time.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

__all__ = ["alive", "bind_to_parent", "die_with_parent", "end_children", "process_tag", "run", "tag_alive"]

_PR_SET_PDEATHSIG = 1
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.RLock()  # end_children runs in signal handlers, maybe inside run()


def run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``args`` to its end with its output captured. It dies with this process, and is ended when the
    caller is interrupted (KeyboardInterrupt, SystemExit) or ``end_children`` is called."""
    child = subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent(),
    )
    with child:
        with _running_lock:
            _running.add(child)
        try:
            out, err = child.communicate()
        except BaseException:
            _end(child)
            raise
        finally:
            with _running_lock:
                _running.discard(child)
    return subprocess.CompletedProcess(list(args), child.returncode, out, err)


def end_children() -> None:
    """SIGTERM every child ``run`` has running (from any thread); their callers see them fail."""
    with _running_lock:
        children = list(_running)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.terminate()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when the thread that starts it ends (its process
    exiting, by a signal or not); None elsewhere.

    The kernel ties the child to the starting *thread*, so start long-lived children from a thread that
    lives as long as they should (the main thread, say).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child should only call it
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def bind_to_parent(parent: int) -> bool:
    """Have Linux SIGKILL this process when ``parent``, which started it, exits. False (and nothing done)
    when ``parent`` is not this process's parent or the platform is not Linux."""
    if not sys.platform.startswith("linux") or os.getppid() != parent:
        return False
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # it died in between
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def process_tag(pid: int | None = None) -> str:
    """``PID-STARTTIME`` of a process (this one by default); the start time is ``0`` where unknown."""
    pid = os.getpid() if pid is None else pid
    stat = _stat(pid)
    return f"{pid}-{stat[19] if stat else 0}"


def tag_alive(tag: str) -> bool:
    """Whether the process ``tag`` names is still running (not the same pid, reused by another process)."""
    pid, _, start = tag.partition("-")
    if not pid.isdigit():
        return False
    stat = _stat(int(pid))
    if stat is None:
        return start in ("", "0") and alive(int(pid))
    return stat[0] != "Z" and stat[19] == start


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running; a zombie (exited, not yet reaped) is not."""
    stat = _stat(pid)
    if stat is not None:
        return stat[0] != "Z"
    if os.path.isdir("/proc/self"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first, start time at 19), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _end(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    child.wait()
