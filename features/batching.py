"""Batching across videos: the frames of several assets that wait at once go through one forward pass.

An encoder feature computing several assets' values at once (a stage of the engine runs a GPU feature's values
on threads of their own) calls the same :class:`Batcher`, one per loaded model. Each call brings its
frames, already prepared in the caller's thread (decoded, resized and normalised: assets of different sizes
meet only as model inputs); the calls that wait together are joined into one forward pass of up to
``max_rows`` rows, and each caller gets back exactly its rows. A call is never split, and a forward pass
waits for more calls only while a registered caller (``with batcher.caller():``) is still to bring its
frames, and never longer than ``max_wait_s``: a lone caller is served at once. On the CPU the same path runs
with small batches. Values are still stored per asset under their own keys; batching changes no key (the
batch size is an execution setting, like the device).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

__all__ = ["Batcher", "arriving", "batcher"]

Array = np.ndarray[Any, Any]


class Sized(Protocol):
    def __len__(self) -> int: ...


P = TypeVar("P", bound=Sized)


@dataclass
class _Call(Generic[P]):
    prepared: P
    rows: Array | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class Batcher(Generic[P]):
    """Joins concurrent calls' prepared inputs into forward passes of at most ``max_rows`` rows."""

    prepare: Callable[[Array], P]
    forward: Callable[[Sequence[P]], Array]
    max_rows: int
    max_wait_s: float = 0.01
    passes: int = 0  # forward passes run, and the rows they took: what tests and benchmarks read
    rows: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _waiting: list[_Call[P]] = field(default_factory=list)
    _callers: int = 0
    _running: bool = False

    @contextmanager
    def caller(self) -> Iterator[None]:
        """Mark the current work as a caller still to bring frames: a forward pass waits (up to the bound)
        until each registered caller has a call waiting."""
        if getattr(_local, "arriving", False):  # it has arrived: from now on it counts as a caller
            _local.arriving = False
            _arrived()
        with self._cond:
            self._callers += 1
        try:
            yield
        finally:
            with self._cond:
                self._callers -= 1
                self._cond.notify_all()

    def __call__(self, frames: Array) -> Array:
        """The rows of ``frames``, from a forward pass that may also carry other callers' frames."""
        call: _Call[P] = _Call(self.prepare(frames))
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            self._waiting.append(call)
            self._cond.notify_all()
            while not call.done:
                now = time.monotonic()
                if not self._running and self._waiting and self._ready(now >= deadline):
                    self._lead()
                    continue
                self._cond.wait(timeout=max(deadline - now, 0.001) if not self._running else None)
        if call.error is not None:
            raise call.error
        assert call.rows is not None
        return call.rows

    def _ready(self, late: bool) -> bool:
        waiting_rows = sum(len(c.prepared) for c in self._waiting)
        return late or waiting_rows >= self.max_rows or len(self._waiting) >= max(self._callers + _arriving, 1)

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _lead(self) -> None:
        """Run one forward pass over the oldest waiting calls (lock held on entry and on return)."""
        batch: list[_Call[P]] = []
        rows = 0
        while self._waiting and (not batch or rows + len(self._waiting[0].prepared) <= self.max_rows):
            call = self._waiting.pop(0)
            batch.append(call)
            rows += len(call.prepared)
        self._running = True
        self._cond.release()
        try:
            try:
                out = self.forward([c.prepared for c in batch])
                error = None
            except BaseException as exc:  # every caller of the pass gets the error
                out, error = None, exc
        finally:
            self._cond.acquire()
        start = 0
        for call in batch:
            if out is not None:
                call.rows = out[start : start + len(call.prepared)]
                start += len(call.prepared)
            call.error, call.done = error, True
        self.passes += 1
        self.rows += rows
        self._running = False
        self._cond.notify_all()


_batchers: dict[tuple[str, ...], Batcher[Any]] = {}
_lock = threading.Lock()
_local = threading.local()
#: Threads that will call a batcher soon (an engine stage's values, see ``arriving``) and have not yet.
_arriving = 0


@contextmanager
def arriving() -> Iterator[None]:
    """The current thread is one of several computing at once (a GPU stage's values): until it registers as a
    caller, or ends without one, forward passes wait for it too (up to their bound), so assets whose threads
    start together meet in the same passes however their inputs' loading is spread out."""
    global _arriving
    with _lock:
        _arriving += 1
    _local.arriving = True
    try:
        yield
    finally:
        if getattr(_local, "arriving", False):
            _local.arriving = False
            _arrived()
            with _lock:
                waiting = list(_batchers.values())
            for found in waiting:
                found.notify()


def _arrived() -> None:
    global _arriving
    with _lock:
        _arriving -= 1


def batcher(key: tuple[str, ...], make: Callable[[], Batcher[Any]]) -> Batcher[Any]:
    """The process's batcher for ``key`` (a model's fingerprint and device), made on first use."""
    with _lock:
        found = _batchers.get(key)
        if found is None:
            found = _batchers[key] = make()
        return found
