"""What the person importing chose (command-line options and query parameters alike)."""

from __future__ import annotations

from dataclasses import dataclass

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class ImportOptions:
    separator: str | None = None  # None: detected from the header line
    encoding: str | None = None  # None: UTF-8 (BOM or not), else Latin-1
    default_region: str = "FR"  # phone numbers written without a country code
    default_time_zone: str = "Europe/Paris"  # dates without an offset, unless the row has a time_zone
    skip_invalid: bool = False  # write the valid rows even when some are rejected
    batch_size: int | None = None  # commit every N rows and keep a cursor to resume from
    resume: bool = False
    list_name: str | None = None  # put the imported contacts in this list (created if missing)
    source: str = "import"  # recorded with the consents

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch size: give a number of rows of 1 or more")
