"""``python -m bench [NAME …] [--n N] [--list] [--profile NAME]``: run the registered
benchmarks, print reports.

To add a benchmark, write a module with ``NAME``, ``SUMMARY``, ``DEFAULT_N`` and
``run(n: int) -> bench.Report`` and add its import path to ``REGISTRY``. ``--profile NAME`` runs
one under cProfile and prints the top 25 functions by cumulative time; a module whose ``run``
works in child processes offers ``profile_run(n)`` (in process) and ``PROFILE_N`` for it.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import cast

from bench import Report

REGISTRY: tuple[str, ...] = (
    "bench.fire",
    "bench.mail",
    "bench.sweep",
    "bench.national",
    "bench.year",
    "bench.cli",
    "bench.audit",
)
TOP = 25  # functions printed by --profile


def _modules() -> dict[str, ModuleType]:
    modules = {}
    for path in REGISTRY:
        module = importlib.import_module(path)
        modules[str(module.NAME)] = module
    return modules


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the chosen benchmarks (all by default)."""
    modules = _modules()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(modules)}")
    parser.add_argument("--n", type=int, default=None, help="operations per benchmark")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    parser.add_argument(
        "--profile", metavar="NAME", help=f"run NAME under cProfile; print the top {TOP}"
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, module in modules.items():
            print(f"{name}: {module.SUMMARY} (default n = {module.DEFAULT_N})")
        return 0
    unknown = [name for name in args.names if name not in modules]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(modules)}")
    if args.n is not None and args.n < 1:
        parser.error("--n must be ≥ 1")
    if args.profile is not None:
        if args.profile not in modules:
            parser.error(f"unknown benchmark {args.profile}; known: {', '.join(modules)}")
        return _profile(modules[args.profile], args.n)
    for name in args.names or list(modules):
        module = modules[name]
        run = cast(Callable[[int], Report], module.run)
        report = run(args.n or int(module.DEFAULT_N))
        print(report.render(), flush=True)
    return 0


def _profile(module: ModuleType, n: int | None) -> int:
    """Run one benchmark in this process under cProfile; its report, then the top functions."""
    run = cast(Callable[[int], Report], getattr(module, "profile_run", module.run))
    size = n or int(getattr(module, "PROFILE_N", module.DEFAULT_N))
    profiler = cProfile.Profile()
    report = profiler.runcall(run, size)
    print(report.render(), flush=True)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(pstats.SortKey.CUMULATIVE).print_stats(TOP)
    return 0


if __name__ == "__main__":
    sys.exit(main())
