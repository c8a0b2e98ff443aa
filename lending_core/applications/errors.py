from infra.errors import Conflict, InvalidInput, PermissionDenied


class RealNameRequired(Conflict):
    """Complete real-name verification before applying."""


class ConsentsMissing(InvalidInput):
    """Give the consents this product needs before it can look at your data."""


class CoolingOff(Conflict):
    """A recent application for this product was declined: apply again after the cooling-off period."""


class TooManyLiveApplications(Conflict):
    """You already have applications in progress; finish or withdraw them first."""


class ReviewerIsReferrer(PermissionDenied):
    """Nobody reviews an application they referred."""


class AboveModelLimit(PermissionDenied):
    """Only a senior reviewer may approve more than the model's limit."""
