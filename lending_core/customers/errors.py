from infra.errors import Conflict, InvalidInput


class UnknownConsentPurpose(InvalidInput):
    """Consents are given for one of the published purposes."""


class CustomerAlreadyExists(Conflict):
    """A customer with this ID number already exists: one person, one record."""


class UnknownPiiField(InvalidInput):
    """Only name, id_number and phone can be unmasked."""


class RealNameMismatch(InvalidInput):
    """Name, ID number and phone do not belong to one person."""


class RealNameAlreadyVerified(Conflict):
    """This customer is already verified as another person."""


class InvalidFirm(InvalidInput):
    """A firm needs a name, an 18-character unified social credit code and a legal representative."""
