"""Maker-checker (dual control): a change proposed by one staff member takes effect only when a
different staff member with the right permission approves it.

Each kind of change registers what applies it and who may approve it (``register``). Later areas
use it for publishing product versions, lifting blacklist entries and large campaign budgets.
"""
