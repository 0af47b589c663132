"""Workflow-safe payloads and typed activity stubs per capability; the tables in ``models.tables``."""
