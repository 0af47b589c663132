"""CSV contact import, shared by ``relance contacts import`` and ``/v1/contacts/import``.

The file is streamed: parsed and checked row by row, staged in a temporary table
(COPY on PostgreSQL, executemany on SQLite) and merged into ``contacts`` by one
upsert, inside one transaction (or one per batch with ``batch_size``).
"""
