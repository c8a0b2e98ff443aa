"""Database migrations (tortoise built-in), one history for all packages; applied by `server.cli migrate`."""
