"""Refusals of post-loan warnings, disposal tasks and list proposals."""

from __future__ import annotations

from infra.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class InvalidSignal(InvalidInput):
    """A signal needs a known severity, source and category, and a timezone-aware time."""


class SignalNotFound(NotFound):
    """No such warning signal, or not one of the caller's bank."""


class TaskNotFound(NotFound):
    """No such disposal task, or not one of the caller's bank."""


class TaskNotYours(PermissionDenied):
    """A disposal task in progress is worked by the officer who took it."""


class InvalidNote(InvalidInput):
    """A note is 1 to 1000 characters of text."""


class ProposalNotFound(NotFound):
    """No such list proposal, or not one of the caller's bank."""


class ProposalDecided(Conflict):
    """This list proposal was already confirmed or rejected."""


class RiskRunRefused(Conflict):
    """The warning batch for this bank and date is being run by another worker."""
