"""The exception raised for a metadata value that cannot be used."""

from __future__ import annotations


class MetadataError(ValueError):
    """A bad value for one metadata field; ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
