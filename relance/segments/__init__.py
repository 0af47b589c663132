"""Dynamic segments: criteria compiled to SQLAlchemy Core, default filters, lead scoring."""
