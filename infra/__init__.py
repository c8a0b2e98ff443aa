"""Shared plumbing: settings, database, Redis, outbox, audit, idempotency and personal-data protection. Everything may import it; it imports nothing of ours."""
