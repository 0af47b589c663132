"""Temporal activities: thin, idempotent side effects, one module per capability."""
