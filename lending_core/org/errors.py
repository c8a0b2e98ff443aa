from infra.errors import Conflict, InvalidInput, PermissionDenied, Unauthenticated


class InvalidRoles(InvalidInput):
    """Roles must be known, and association roles go only to association staff."""


class InvalidCredentials(Unauthenticated):
    """Username or password is wrong."""


class AccountLocked(PermissionDenied):
    """Too many failed sign-ins: the account is locked for a while."""

    def __init__(self, retry_after: int):
        super().__init__("too many failed sign-ins; try again later", details={"retry_after": retry_after})
        self.retry_after = retry_after


class AccountDisabled(PermissionDenied):
    """This staff account is disabled."""


class UsernameTaken(Conflict):
    """Usernames are unique across the association."""
