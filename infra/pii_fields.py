"""An ORM field that stores personal data encrypted (AES-GCM) and gives it back in clear.

Encryption uses a random nonce, so the column cannot be searched: every encrypted value that is
looked up has a sibling ``*_hash`` column holding ``pii.keyring().lookup_hash(kind, value)``.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields

from infra import pii


class EncryptedTextField(fields.TextField):
    """Clear text in Python, ciphertext naming its key id in the database."""

    def to_db_value(self, value: Any, instance: Any) -> Any:
        if value is None:
            return None
        return pii.keyring().encrypt(str(value))

    def to_python_value(self, value: Any) -> Any:
        # Called both with rows from the database and with clear values given to the constructor.
        if isinstance(value, str) and pii.is_ciphertext(value):
            return pii.keyring().decrypt(value)
        return value
