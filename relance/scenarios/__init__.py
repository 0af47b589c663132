"""Scenario files: the model, loading with line numbers, validation, diff, map, apply."""
