"""The clock port: the wall clock for real use, a settable one for tests and simulation."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current instant (epoch seconds)."""

    def now(self) -> int:
        """The current instant."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> int:
        """The current instant."""
        return int(time.time())


class VirtualClock:
    """A clock that only moves when told to (``simulate``, ``tick --now``, tests)."""

    def __init__(self, start: int) -> None:
        self.instant = start

    def now(self) -> int:
        """The current virtual instant."""
        return self.instant

    def set(self, instant: int) -> None:
        """Move the clock to ``instant`` (backwards too: a clock can jump)."""
        self.instant = instant


class AcceleratedClock:
    """Virtual time that runs ``speed`` times faster than the wall clock from ``start``."""

    def __init__(self, start: int, speed: float, origin: float | None = None) -> None:
        self.start = start
        self.speed = speed
        self.origin = time.time() if origin is None else origin

    def now(self) -> int:
        """The current accelerated instant."""
        return self.start + int((time.time() - self.origin) * self.speed)

    def wall_delay(self, until: int) -> float:
        """Wall-clock seconds until the virtual clock reaches ``until``."""
        return max(0.0, (until - self.now()) / self.speed)
