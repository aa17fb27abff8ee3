"""Benchmarks for ``make bench`` (``python -m bench``): each prints figures and the ratio to a
baseline measured in the same run, on the same machine, so the numbers mean something anywhere.

A benchmark is a module listed in ``bench.__main__.REGISTRY`` that defines ``NAME``,
``SUMMARY``, ``DEFAULT_N`` and ``run(n: int) -> Report``. The types it returns live here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured number: ``fires/s ours`` = 155.2."""

    label: str
    value: float
    unit: str = ""


@dataclass
class Report:
    """What one benchmark measured: its figures, ratios to the baseline, and notes."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    ratios: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The report as aligned text lines."""
        rows = [*self.figures, *self.ratios]
        width = max((len(row.label) for row in rows), default=0)
        lines = [f"{self.name}: {self.title}"]
        for row in self.figures:
            lines.append(f"  {row.label:<{width}}  {row.value:>12,.1f} {row.unit}".rstrip())
        for row in self.ratios:
            lines.append(f"  {row.label:<{width}}  {row.value:>12.4f} {row.unit}".rstrip())
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


class Stopwatch:
    """Elapsed wall time of a block (``with watch.running(): …``), summed over uses."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        """Time the block."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started

    def rate(self, count: int) -> float:
        """``count`` per elapsed second."""
        return count / self.seconds if self.seconds > 0 else float("inf")
