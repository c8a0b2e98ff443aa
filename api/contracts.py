"""Contracts for customers: read, sign with a one-time SMS code, the evidence report."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("contracts", url_prefix="/api/v1")
