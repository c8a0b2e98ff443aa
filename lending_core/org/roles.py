"""Staff roles and what each may do. Permissions are checked by name, never by role, so a new
role is one line here."""

from __future__ import annotations

from enum import StrEnum

from lending_core.org.errors import InvalidRoles


class Role(StrEnum):
    ACCOUNT_MANAGER = "account_manager"
    MARKETER = "marketer"
    REVIEWER = "reviewer"
    SENIOR_REVIEWER = "senior_reviewer"
    RISK_OFFICER = "risk_officer"
    BANK_ADMIN = "bank_admin"
    ASSOCIATION_PRODUCT_MANAGER = "association_product_manager"
    ASSOCIATION_ADMIN = "association_admin"
    # Runs association-wide campaigns (red packets, referral rewards across every member bank).
    ASSOCIATION_MARKETER = "association_marketer"


ASSOCIATION_ROLES = frozenset({Role.ASSOCIATION_PRODUCT_MANAGER, Role.ASSOCIATION_ADMIN, Role.ASSOCIATION_MARKETER})

_ALL_STAFF = frozenset(Role)

PERMISSIONS: dict[str, frozenset[Role]] = {
    "org.read": _ALL_STAFF,
    "staff.manage": frozenset({Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "customers.read": frozenset(
        {Role.ACCOUNT_MANAGER, Role.REVIEWER, Role.SENIOR_REVIEWER, Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}
    ),
    # Seeing personal data in clear is a permission of its own, and every use is audited.
    "pii.unmask": frozenset({Role.SENIOR_REVIEWER, Role.RISK_OFFICER, Role.ASSOCIATION_ADMIN}),
    "changes.propose": _ALL_STAFF,
    "audit.read": frozenset({Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    # Association product managers run the catalogue; a bank admin proposes the bank's own products.
    "products.manage": frozenset({Role.ASSOCIATION_PRODUCT_MANAGER, Role.BANK_ADMIN}),
    "applications.review": frozenset({Role.REVIEWER, Role.SENIOR_REVIEWER}),
    # Approving above the model's limit is senior reviewers' authority.
    "applications.review_above_model": frozenset({Role.SENIOR_REVIEWER}),
    # Contracts of the bank and their evidence reports (what the bank hands a court in a dispute).
    "contracts.read": frozenset(
        {Role.ACCOUNT_MANAGER, Role.REVIEWER, Role.SENIOR_REVIEWER, Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}
    ),
    "secondary_marketing.read": frozenset({Role.ACCOUNT_MANAGER, Role.MARKETER, Role.BANK_ADMIN}),
    "lists.read": frozenset({Role.REVIEWER, Role.SENIOR_REVIEWER, Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "lists.manage": frozenset({Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    # Staff-wide marketing: a bank's admins and marketers set its quotas and incentive rules;
    # incentive amounts are performance-review figures, not for every colleague's eyes.
    "quotas.manage": frozenset({Role.MARKETER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "incentives.manage": frozenset({Role.MARKETER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "incentives.read": frozenset({Role.MARKETER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    # Account managers follow up their own branch's declined applicants; these roles the whole bank's.
    "secondary_marketing.bank_wide": frozenset({Role.MARKETER, Role.BANK_ADMIN}),
    "secondary_marketing.follow_up": frozenset({Role.ACCOUNT_MANAGER, Role.MARKETER, Role.BANK_ADMIN}),
    "marketing.abuse_report": frozenset({Role.MARKETER, Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "marketing.analytics": frozenset({Role.MARKETER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    # Warning rule books (M16): risk staff read them; a change is proposed by one and published
    # when a second with the same power approves (the association's book by association staff).
    "risk_rules.read": frozenset(
        {Role.RISK_OFFICER, Role.SENIOR_REVIEWER, Role.BANK_ADMIN, Role.ASSOCIATION_PRODUCT_MANAGER, Role.ASSOCIATION_ADMIN}
    ),
    "risk_rules.manage": frozenset({Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_PRODUCT_MANAGER, Role.ASSOCIATION_ADMIN}),
    # Post-loan warnings and disposal (M15, M18): risk officers see and work their bank's signals,
    # tasks and list proposals; a bank admin may also run the batch for the bank.
    "risk.read": frozenset({Role.RISK_OFFICER, Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    "risk.manage": frozenset({Role.RISK_OFFICER, Role.ASSOCIATION_ADMIN}),
    "risk.run_batch": frozenset({Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
    # Product monitoring figures and charts for the risk meeting (M19).
    "monitoring.read": frozenset(
        {Role.RISK_OFFICER, Role.SENIOR_REVIEWER, Role.BANK_ADMIN, Role.ASSOCIATION_PRODUCT_MANAGER, Role.ASSOCIATION_ADMIN}
    ),
    # Campaigns: a bank's marketers and admins run its own, association marketers and admins the
    # association-wide ones; a budget above the threshold is approved by a second person.
    "campaigns.manage": frozenset({Role.MARKETER, Role.BANK_ADMIN, Role.ASSOCIATION_MARKETER, Role.ASSOCIATION_ADMIN}),
    "campaigns.approve": frozenset({Role.BANK_ADMIN, Role.ASSOCIATION_ADMIN}),
}


def allows(roles: frozenset[str] | set[str], permission: str) -> bool:
    return any(role in PERMISSIONS[permission] for role in roles)


def granted(roles: frozenset[str] | set[str] | list[str]) -> list[str]:
    """Every permission the roles give, sorted: what the console shows a member (the API still checks each call)."""
    return sorted(permission for permission in PERMISSIONS if allows(set(roles), permission))


def validate_roles(roles: list[str], *, association_staff: bool) -> list[str]:
    """The roles as a sorted list, refusing unknown ones and roles that belong to the other level."""
    unknown = sorted(set(roles) - {r.value for r in Role})
    if unknown:
        raise InvalidRoles(f"unknown roles: {', '.join(unknown)}", details={"unknown": unknown})
    if not roles:
        raise InvalidRoles("a staff member needs at least one role")
    wrong_level = sorted(r for r in set(roles) if (Role(r) in ASSOCIATION_ROLES) != association_staff)
    if wrong_level:
        raise InvalidRoles(
            "association roles are for association staff, bank roles for bank staff",
            details={"wrong_level": wrong_level},
        )
    return sorted(set(roles))
