"""One exception root; each subclass carries the CLI exit code of CONTRACT.md."""

from __future__ import annotations


class RubrongError(Exception):
    """Base of every error a user can cause or meet. ``exit_code`` is the CLI's exit status."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EnvironmentProblem(RubrongError):
    """The database or another resource is unreachable (exit 1)."""

    exit_code = 1


class BadInput(RubrongError):
    """Bad usage, bad data, unknown agreement or event, invalid config (exit 2)."""

    exit_code = 2


class NotAllowed(RubrongError):
    """The event is not allowed now: state or guard (exit 3)."""

    exit_code = 3


class NotAuthorised(RubrongError):
    """The role may not do this (exit 4)."""

    exit_code = 4


class ConcurrentChange(RubrongError):
    """Someone else changed the agreement first; nothing was written (exit 5)."""

    exit_code = 5


class IntegrityFailure(RubrongError):
    """The history chain does not verify (exit 6)."""

    exit_code = 6
