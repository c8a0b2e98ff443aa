"""Schemathesis hooks for the API fuzz run (loaded through SCHEMATHESIS_HOOKS by tests/fuzz/run.py).

Every refusal must carry the standard error shape ``{"error": {"code", "message", "details"}}``:
the mini-program and the console map ``code`` to their messages, so a bare text or another shape
is a bug even when the status is right.
"""

from __future__ import annotations

import ast
import json
import re
import threading

import schemathesis

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")

# CPython 3.11's AST constructor keeps its recursion depth in state the threads share, so two
# concurrent ast.parse calls can fail with "AST constructor recursion depth mismatch". Schemathesis
# workers are threads and Hypothesis parses source files to describe the lambdas of its
# strategies: parsing is serialised in this (the st) process.
_parse, _parse_lock = ast.parse, threading.Lock()


def _serialised_parse(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _serialised_parse


@schemathesis.check
def standard_error_shape(ctx, response, case):
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"a {response.status_code} answer is not JSON: {response.content[:200]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        raise AssertionError(f'a {response.status_code} answer is not {{"error": {{"code", "message", "details"}}}}: {body!r:.300}')
    if not (isinstance(error["code"], str) and _CODE.match(error["code"])):
        raise AssertionError(f"the error code {error['code']!r} is not an upper-case constant")
    if not isinstance(error["message"], str) or not error["message"]:
        raise AssertionError("the error message is empty")
    return None
