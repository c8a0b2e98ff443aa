from infra.errors import Conflict, InvalidInput, NotFound


class ProductNotFound(NotFound):
    """No such product."""


class ProductNotOffered(InvalidInput):
    """This product is not offered at this bank or through this channel."""


class RequestOutOfBounds(InvalidInput):
    """The amount, term or repayment method is outside what the product allows."""


class DefinitionRefused(InvalidInput):
    """The product definition is invalid; details list every problem."""


class VersionConflict(Conflict):
    """This product already has a proposal waiting for approval."""


class ParameterOutOfBounds(InvalidInput):
    """A bank may set only the parameters the product lets it override, within their bounds."""


class ApplicantsRefused(InvalidInput):
    """The simulation's applicant CSV cannot be read; details name each bad line."""


class TooManyApplicants(InvalidInput):
    """A simulation takes at most MAX_APPLICANTS applicants (it asks the data sources about each)."""
