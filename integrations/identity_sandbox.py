"""Sandbox of the real-name three-factor check (name + ID number + phone).

Deterministic, so anyone can see every outcome:
- a phone ending in 0000 is not owned by this person -> mismatch "phone_not_owned";
- a name containing 错 does not match the ID number -> mismatch "name_id_mismatch";
- a phone ending in 9999 makes the service time out -> VerificationUnavailable;
- anything else matches.

A real integration calls a licensed verification service (the telecom operators' three-factor
API through a provider such as the bank's own KYC gateway) with a signed request and the
customer's consent; it needs the provider's endpoint, credentials and its answer codes.
"""

from __future__ import annotations

from lending_core.customers.ports import RealNameCheck, VerificationUnavailable


class SandboxIdentityVerifier:
    async def verify(self, *, name: str, id_number: str, phone: str) -> RealNameCheck:
        if phone.endswith("9999"):
            raise VerificationUnavailable()
        if phone.endswith("0000"):
            return RealNameCheck(False, "phone_not_owned")
        if "错" in name:
            return RealNameCheck(False, "name_id_mismatch")
        return RealNameCheck(True)
