"""Association-level rules every product obeys, whatever its definition says."""

# Unsecured consumer credit per person across all member banks (yuan).
UNSECURED_CREDIT_CAP_YUAN = 200_000
# Principal and interest at maturity (到期一次还本付息) only up to one year.
BULLET_MAX_MONTHS = 12
# Penalty interest (罚息) at most 50% above the contract rate.
PENALTY_UPLIFT_MAX_BPS = 5000
