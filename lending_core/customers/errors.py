from infra.errors import Conflict, InvalidInput


class UnknownConsentPurpose(InvalidInput):
    """Consents are given for one of the published purposes."""


class CustomerAlreadyExists(Conflict):
    """A customer with this ID number already exists: one person, one record."""


class UnknownPiiField(InvalidInput):
    """Only name, id_number and phone can be unmasked."""
