"""Store: SQLite in WAL mode, written by one thread, read by many.

``migrations`` creates the schema, ``writer`` is the single writer fed by a bounded queue, ``queries`` is the read
side and ``retention`` trims old data.
"""
