"""CSV contact import (C-01, C-02, C-03), shared by ``relance contacts import`` and ``/v1/contacts/import``.

The file is streamed: parsed and checked row by row, staged in a temporary table
(COPY on PostgreSQL, executemany on SQLite) and merged into ``contacts`` by one
upsert, inside one transaction (or one per batch with ``batch_size``).
"""

from __future__ import annotations

from relance.importer.errors import ImportFileError, Problem, SetupError
from relance.importer.options import ImportOptions
from relance.importer.report import ImportReport, Rejection
from relance.importer.run import NewContact, Prepared, import_csv, prepare, preview_rows

__all__ = [
    "ImportFileError",
    "ImportOptions",
    "ImportReport",
    "NewContact",
    "Prepared",
    "Problem",
    "Rejection",
    "SetupError",
    "import_csv",
    "prepare",
    "preview_rows",
]
