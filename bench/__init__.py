"""Benchmarks (`make bench`): each figure is measured next to a bare Sanic JSON endpoint in the
same run, on PostgreSQL and Redis, loaded by wrk; the run writes docs/benchmarks.md itself."""
