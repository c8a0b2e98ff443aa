from infra.errors import Conflict, InvalidInput, PermissionDenied


class UnknownListLevel(InvalidInput):
    """A list level is blacklist_prohibit, blacklist_restrict or greylist."""


class MatchKeyRequired(InvalidInput):
    """An entry needs at least one of ID number, phone or WeChat unionid to match people by."""


class InvalidUnionid(InvalidInput):
    """A WeChat unionid is 1-64 printable ASCII characters without spaces."""


class InvalidReason(InvalidInput):
    """An entry needs a reason of at most 500 characters."""


class ExpiryInPast(InvalidInput):
    """An entry's expiry must lie in the future (timezone-aware)."""


class AllBankEntryForbidden(PermissionDenied):
    """Only association staff may add or lift an entry that applies to all member banks."""


class DuplicateListEntry(Conflict):
    """An active entry of this level, bank and keys already exists."""


class LiftAlreadyProposed(Conflict):
    """A lift of this entry is already waiting for a second person."""


class InvalidImportFile(InvalidInput):
    """The import file must be UTF-8 CSV with a header row naming the columns level, id_number,
    phone, reason and optionally expires_on, within the row and size limits."""
