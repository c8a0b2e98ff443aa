"""HTTP: one blueprint per audience (customers, staff, health), auth tokens, request parsing,
idempotency and the error table. Routes only parse, call one service function and render; no
route is defined anywhere else, and nothing imports ``api``.
"""
