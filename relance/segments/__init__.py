"""Dynamic segments: criteria compiled to SQLAlchemy Core (C-06, C-07), default filters (C-04)."""
