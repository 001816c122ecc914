"""Timing and memory measurement: a target and its baseline, interleaved in one process, medians kept.

Interleaving puts both sides under the same noise (other tenants, CPU frequency, page cache), so their
ratio is steadier than either time alone. Each round starts one later in the list (A B, B A, A B, ...) so
that no side always runs on another's warm caches.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

__all__ = [
    "BenchError",
    "Figure",
    "Memory",
    "Samples",
    "cpu_seconds",
    "interleaved",
    "interleaved_costs",
    "measure_memory",
    "side_by_side",
]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class BenchError(RuntimeError):
    """A benchmark's setup or its measured operation did not do what the figure claims to measure."""


@dataclass(frozen=True)
class Samples:
    """Wall-clock seconds of each run of the target and of its baseline, in the order they ran."""

    target: list[float]
    baseline: list[float]

    @property
    def target_median(self) -> float:
        return statistics.median(self.target)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    @property
    def ratio(self) -> float:
        """Median of the target over median of the baseline: the figure."""
        return self.target_median / self.baseline_median

    @property
    def pair_ratio_median(self) -> float:
        """Median of the per-round ratios: a cross-check that is less sensitive to drifting noise."""
        return statistics.median(t / b for t, b in zip(self.target, self.baseline, strict=True))


@dataclass(frozen=True)
class Memory:
    """What one run allocated at its peak: Python-heap bytes (tracemalloc, NumPy included) and the growth of
    the process's peak resident set (``VmHWM`` reset before the run; None where Linux does not allow it)."""

    traced_peak: int
    rss_peak_delta: int | None


@dataclass
class Figure:
    """One row of the report: a target operation against its baseline, and the target it should meet."""

    name: str
    description: str
    target_label: str
    baseline_label: str
    samples: Samples | None = None
    max_ratio: float | None = None
    max_seconds: float | None = None
    memory_target: Memory | None = None
    memory_baseline: Memory | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """Whether the figure met its target; None when it has none."""
        if self.samples is None:
            return None
        checks: list[bool] = []
        if self.max_ratio is not None:
            checks.append(self.samples.ratio <= self.max_ratio)
        if self.max_seconds is not None:
            checks.append(self.samples.target_median < self.max_seconds)
        return all(checks) if checks else None

    @property
    def target_text(self) -> str:
        parts = []
        if self.max_ratio is not None:
            parts.append(f"≤{self.max_ratio:g}x")
        if self.max_seconds is not None:
            parts.append(f"<{self.max_seconds:g} s")
        return ", ".join(parts) or "-"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "target": self.target_label,
            "baseline": self.baseline_label,
            "max_ratio": self.max_ratio,
            "max_seconds": self.max_seconds,
            "passed": self.passed,
            "notes": self.notes,
        }
        if self.samples is not None:
            data.update(
                target_median_s=self.samples.target_median,
                baseline_median_s=self.samples.baseline_median,
                ratio=self.samples.ratio,
                pair_ratio_median=self.samples.pair_ratio_median,
                target_s=self.samples.target,
                baseline_s=self.samples.baseline,
            )
        for side, memory in (("target", self.memory_target), ("baseline", self.memory_baseline)):
            if memory is not None:
                data[f"{side}_traced_peak_bytes"] = memory.traced_peak
                data[f"{side}_rss_peak_delta_bytes"] = memory.rss_peak_delta
        return data


def side_by_side(
    target: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 1,
    before_each: Callable[[], None] | None = None,
) -> Samples:
    """Run ``target`` and ``baseline`` alternately ``repeats`` times each, after ``warmup`` untimed rounds."""
    target_times, baseline_times = interleaved(
        [target, baseline], repeats=repeats, warmup=warmup, before_each=before_each
    )
    return Samples(target_times, baseline_times)


def interleaved(
    fns: Sequence[Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    before_each: Callable[[], None] | None = None,
) -> list[list[float]]:
    """Seconds of ``repeats`` runs of each of ``fns``, run in turn; each round starts one later in the list.

    ``before_each`` runs untimed before every run (e.g. to give the next ingest a new name).
    """
    wall, _ = interleaved_costs(fns, repeats=repeats, warmup=warmup, before_each=before_each)
    return wall


def interleaved_costs(
    fns: Sequence[Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    before_each: Callable[[], None] | None = None,
    cpu: Callable[[], float] | None = None,
) -> tuple[list[list[float]], list[list[float]]]:
    """:func:`interleaved`, with each run's CPU seconds as well (the change in ``cpu()`` across it; empty
    lists without ``cpu``). ``cpu`` is read outside the timed span, so its own cost is in neither side."""
    for _ in range(warmup):
        for fn in fns:
            if before_each is not None:
                before_each()
            fn()
    # Collected once, not before every run: a full collection walks the whole heap and leaves the CPU caches
    # cold, which doubled sub-millisecond runs (a Postgres lookup) and hid what a reader in a loop sees.
    gc.collect()
    times: list[list[float]] = [[] for _ in fns]
    cpu_times: list[list[float]] = [[] for _ in fns]
    for round_ in range(repeats):
        for step in range(len(fns)):
            i = (round_ + step) % len(fns)
            if before_each is not None:
                before_each()
            cpu_before = cpu() if cpu is not None else 0.0
            started = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - started)
            if cpu is not None:
                cpu_times[i].append(cpu() - cpu_before)
    return times, cpu_times


def measure_memory(fn: Callable[[], object]) -> Memory:
    """Peak memory of ``fn``, measured apart from timing: one run for the resident set, one under
    tracemalloc (which slows Python down and whose own bookkeeping would inflate the resident set)."""
    gc.collect()
    rss_before = _reset_peak_rss()
    fn()
    rss_peak = _status_kib("VmHWM") if rss_before is not None else None
    delta = None if rss_before is None or rss_peak is None else max(0, rss_peak - rss_before) * 1024
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return Memory(traced_peak, delta)


def _reset_peak_rss() -> int | None:
    """Reset the process's peak RSS to its current RSS (Linux: ``5`` to clear_refs); the RSS in KiB.

    Free heap pages are handed back first, or a run that reuses them would show no growth at all.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return cast(Callable[[int], int], ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def _status_kib(field_name: str) -> int | None:
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def cpu_seconds(*pids: int | None) -> float:
    """CPU seconds (user + system) so far of this process, its waited-for children (ffmpeg, say), and each
    process tree in ``pids`` (a server's: the process, its live descendants and the ones they have reaped)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for pid in pids:
        if pid is not None:
            total += sum(_process_cpu(p) for p in _tree(pid))
    return total


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` from ``/proc/PID/stat``; 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields[0] is the state, field 3
    return sum(int(f) for f in fields[11:15]) / _TICKS


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``/proc/PID/task/TID/children``)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                queue.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found
