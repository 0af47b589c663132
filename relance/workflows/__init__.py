"""Temporal workflows: deterministic orchestration only, with the helpers in ``common`` and ``ids``."""
