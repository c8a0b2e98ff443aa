"""Loans: receipts (借据) drawn on a credit line, their schedules, repayments and daily accrual."""
