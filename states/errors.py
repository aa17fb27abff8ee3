"""The machine's own exceptions: one root, standard library only.

``states`` knows nothing of the engine's exit codes; the engine translates at its boundary
(``workflow.usecases.fire`` turns :class:`EventRefused` into ``workflow.rules.errors.NotAllowed``,
exit 3).
"""

from __future__ import annotations


class MachineError(Exception):
    """Base of every exception ``states`` raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EventRefused(MachineError):
    """The event is not allowed now: the agreement's state, or one of the event's guards."""


class MachineDefinitionError(MachineError):
    """The declared machine is inconsistent (a programming error, caught at import)."""
