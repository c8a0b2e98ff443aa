"""Loans for customers: drawdown on a credit line, loans with schedules, repayment, payoff quote."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("loans", url_prefix="/api/v1")
