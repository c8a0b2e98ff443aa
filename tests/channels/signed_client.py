"""Signing server-to-server requests the way a member bank's app or a partner platform does
(see ``channels.signing``): the tests sign the exact bytes they send."""

from __future__ import annotations

import json
import time
import uuid

from channels.signing import sign


def new_nonce() -> str:
    return uuid.uuid4().hex


def encode(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def signed_headers(
    key_id: str,
    secret: str,
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    timestamp: int | str | None = None,
    nonce: str | None = None,
) -> dict:
    """The four signature headers (and the JSON content type) for one request."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    return {
        "Content-Type": "application/json",
        "X-Key-Id": key_id,
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path_with_query, timestamp, nonce, body),
    }


async def signed_request(client, key_id: str, secret: str, method: str, path_with_query: str, payload=None):
    """Send one correctly signed request; ``payload`` is JSON-encoded (None: no body)."""
    body = b"" if payload is None else encode(payload)
    headers = signed_headers(key_id, secret, method, path_with_query, body)
    _, response = await client.request(method, path_with_query, content=body, headers=headers)
    return response
