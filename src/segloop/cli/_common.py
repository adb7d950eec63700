"""Small helpers shared by the command modules (argument parsing, output)."""

from __future__ import annotations

from segloop.io.files import write_json

__all__ = ["parse_series", "write_json"]


def parse_series(value: str | None):
    """A ``--series`` value: an integer index if it looks like one, else a UID/description."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value
