"""Many rows in one statement: ``VALUES (?, ?), (?, ?), ...`` lists of a few hundred rows each.

The writer thread sends rows this way rather than with one statement per row (``executemany``): sqlite3 lets go
of the GIL around every statement step, and on a busy 2-core box each retake can wait a whole switch interval
behind the ingest thread, so a batch should cost a handful of steps, not one per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

#: Parameters per statement: under SQLite's historical limit of 999, whatever the library was built with.
MAX_PARAMETERS = 999


def values_lists(rows: Sequence[Sequence[object]], width: int) -> Iterator[tuple[str, list[object]]]:
    """For each chunk of ``rows`` (each ``width`` values): its placeholders, ``(?, ?), (?, ?)``, and its values."""
    per_statement = max(1, MAX_PARAMETERS // width)
    row = "(" + ", ".join(["?"] * width) + ")"
    full = ", ".join([row] * per_statement)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        placeholders = full if len(chunk) == per_statement else ", ".join([row] * len(chunk))
        yield placeholders, [value for values in chunk for value in values]
