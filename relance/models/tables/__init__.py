"""Application tables (SQLAlchemy 2, typed), one module per capability."""
