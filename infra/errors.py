"""The roots of every business error.

Domain code raises subclasses of these with a docstring that states the broken rule; the error
table in ``api.errors`` maps each class to an HTTP status and a stable machine-readable code.
Messages must never contain personal data: they are shown to callers and written to logs.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the request."""

    def __init__(self, message: str | None = None, *, details: Any = None):
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip().splitlines()[0])
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInput(DomainError):
    """The request is not well-formed for this operation."""


class NotFound(DomainError):
    """No such object, or not one the caller may see."""


class PermissionDenied(DomainError):
    """The caller may not do this."""


class Unauthenticated(DomainError):
    """The caller must prove who they are first."""


class Conflict(DomainError):
    """The request conflicts with the current state of the object."""


class IllegalTransition(Conflict):
    """This event is not allowed from the object's current status."""


class DependencyUnavailable(DomainError):
    """A system we depend on did not answer; nothing was changed, try again later."""

    def __init__(self, message: str | None = None, *, retry_after: int = 5, details: Any = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after
